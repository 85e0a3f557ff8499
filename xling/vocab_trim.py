"""Vocabulary trimming: keep the SentencePiece pieces a set of corpora uses, slice the embedding rows.

Abdaoui et al. (2020), "Load What You Need: Smaller Versions of Multilingual
BERT", and Ushio et al. (2023), "An Efficient Multilingual Language Model
Compression through Vocabulary Trimming": most of a multilingual model's
parameters are its embedding matrix (multilingual-e5-small: 96.0M of 117.5M),
and the rows of pieces that the target languages never use can go.

``trim_vocabulary`` tokenises the corpora with the model's own tokenizer and
keeps those pieces, the special tokens, and the lowest-scoring piece (the
Unigram model scores an unknown character as min score - 10, so keeping the
minimum keeps that score: a line segments the same way before and after, see
below).  It writes

- the model with the rows of the word embeddings (and of the MLM decoder and
  its bias, if there is a head) sliced, in original id order;
- the tokenizer with the same pieces and scores in the same order, so that
  trimmed id i is original id ``trimmed_to_original[i]``;
- ``vocab_trim.json``: that id map, the source and trimmed base fingerprints,
  the corpora (sha256, lines) and the counts.

Unigram segmentation is a Viterbi search for the best-scoring path; removing
pieces that a line's best path does not use cannot change that path, so
every line of the corpora tokenises to the same pieces (checked when
trimming: ``mismatched_lines`` in the report).  Text outside the corpora may
segment differently (missing pieces fall back to shorter ones or <unk>).

The encoder layers are untouched, so an adapter trained on the trimmed model
computes the same function on the full one: ``load_adapter_from_trimmed``
checks both fingerprints against ``vocab_trim.json`` and loads it.

    xling trim-vocab --model work/e5/model --text de.txt sw.txt --output-dir work/e5/model-de-sw
"""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from pathlib import Path

import torch

from adapter_core import AdapterFormatError, FingerprintMismatchError, atomic_write_json
from adapter_core.io import read_adapter_config, read_json

from .data import DataError, ModelDirError, read_text

logger = logging.getLogger(__name__)
TRIM_INFO = "vocab_trim.json"
#: Tensors with one row (or entry) per vocabulary id, by the end of their name.
VOCAB_TENSOR_SUFFIXES = ("word_embeddings.weight", "decoder.weight", "decoder.bias", "lm_head.bias", "predictions.bias")
#: Config fields that hold token ids.
TOKEN_ID_FIELDS = ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id", "mask_token_id")


def _tokenizer_json(tokenizer, model_dir) -> dict:
    document = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = document.get("model", {}).get("type")
    if kind != "Unigram":
        raise ModelDirError(f"{model_dir}: tokenizer model is {kind}; only SentencePiece Unigram vocabularies "
                            "(XLM-R, multilingual-e5) can be trimmed")
    return document


def corpus_token_counts(tokenizer, lines: list[str]) -> Counter:
    """How often each id occurs when ``lines`` are tokenised (special tokens included, no truncation)."""
    counts: Counter = Counter()
    for start in range(0, len(lines), 1000):
        for ids in tokenizer(lines[start:start + 1000], truncation=False)["input_ids"]:
            counts.update(ids)
    return counts


def choose_ids(tokenizer, vocab: list, counts: Counter) -> list[int]:
    """Ids to keep, ascending: those used, the special tokens, and the lowest-scoring piece."""
    lowest = min(range(len(vocab)), key=lambda i: (vocab[i][1], i))
    keep = set(counts) | set(tokenizer.all_special_ids) | {lowest}
    outside = sorted(i for i in keep if not 0 <= i < len(vocab))
    if outside:
        raise ModelDirError(f"tokenizer ids {outside[:5]} lie outside its Unigram vocabulary of {len(vocab)} pieces")
    return sorted(keep)


def _remap_post_processor(processor: dict | None, new_id: dict[int, int]) -> dict | None:
    if processor is None:
        return None
    kind = processor.get("type")
    if kind == "Sequence":
        processor["processors"] = [_remap_post_processor(p, new_id) for p in processor["processors"]]
    elif kind == "TemplateProcessing":
        for token in processor["special_tokens"].values():
            token["ids"] = [new_id[i] for i in token["ids"]]
    elif kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            processor[key] = [processor[key][0], new_id[processor[key][1]]]
    elif kind != "ByteLevel":
        raise ModelDirError(f"cannot remap token ids in a {kind} post-processor")
    return processor


def trimmed_tokenizer_json(document: dict, kept: list[int]) -> dict:
    """The tokenizer.json with only the ``kept`` pieces (in that order) and every id remapped."""
    new_id = {old: new for new, old in enumerate(kept)}
    document = copy.deepcopy(document)
    vocab = document["model"]["vocab"]
    document["model"]["vocab"] = [vocab[i] for i in kept]
    if document["model"].get("unk_id") is not None:
        document["model"]["unk_id"] = new_id[document["model"]["unk_id"]]
    for token in document.get("added_tokens") or []:
        token["id"] = new_id[token["id"]]
    document["post_processor"] = _remap_post_processor(document.get("post_processor"), new_id)
    return document


def _weights_file(model_dir: Path) -> Path:
    path = model_dir / "model.safetensors"
    if not path.is_file():
        raise ModelDirError(f"{model_dir}: no model.safetensors (sharded or .bin checkpoints are not supported)")
    return path


def trim_state_dict(state: dict[str, torch.Tensor], rows: int, kept: list[int]) -> dict[str, torch.Tensor]:
    """Slice every per-vocabulary tensor (see ``VOCAB_TENSOR_SUFFIXES``) with ``rows`` rows to the ``kept`` ids."""
    index = torch.tensor(kept, dtype=torch.long)
    return {name: tensor.index_select(0, index).contiguous()
            if name.endswith(VOCAB_TENSOR_SUFFIXES) and tensor.shape[0] == rows else tensor
            for name, tensor in state.items()}


def base_fingerprint(model_dir: str | Path) -> str:
    """The encoder fingerprint that xling's adapters record (``TransformersHost.base_fingerprint`` of the MLM model)."""
    from transformers import AutoModelForMaskedLM

    from .attach import TransformersHost
    from .train import from_model_dir

    host = TransformersHost(from_model_dir(AutoModelForMaskedLM, model_dir))
    return host.base_fingerprint()


def trim_vocabulary(model_dir: str | Path, text_files: list[str], output_dir: str | Path) -> dict:
    """Write the trimmed model to ``output_dir`` (atomically); returns the report saved as ``vocab_trim.json``."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoTokenizer

    from data_prep.common import file_sha256

    from .train import from_model_dir, publish_directory

    model_dir, output_dir = Path(model_dir), Path(output_dir)
    lines_per_file = {str(path): read_text(path) for path in text_files}
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    config = from_model_dir(AutoConfig, model_dir)
    document = _tokenizer_json(tokenizer, model_dir)
    vocab = document["model"]["vocab"]
    lines = [line for file_lines in lines_per_file.values() for line in file_lines]
    counts = corpus_token_counts(tokenizer, lines)
    kept = choose_ids(tokenizer, vocab, counts)
    weights = _weights_file(model_dir)
    with safe_open(str(weights), framework="pt") as handle:
        state = {name: handle.get_tensor(name) for name in handle.keys()}
        metadata = handle.metadata() or {"format": "pt"}
    rows = config.vocab_size
    trimmed_state = trim_state_dict(state, rows, kept)
    sliced = sorted(name for name in state if trimmed_state[name].shape != state[name].shape)
    if not any(name.endswith("word_embeddings.weight") for name in sliced):
        raise ModelDirError(f"{weights}: no word embedding matrix with {rows} rows (config vocab_size)")
    new_config = copy.deepcopy(config)
    new_config.vocab_size = len(kept)
    new_id = {old: new for new, old in enumerate(kept)}
    for name in TOKEN_ID_FIELDS:
        value = getattr(new_config, name, None)
        if isinstance(value, int):
            if value not in new_id:
                raise ModelDirError(f"{model_dir}: config {name}={value} is not a token the tokenizer keeps")
            setattr(new_config, name, new_id[value])
    if getattr(config, "pad_token_id", None) is not None and new_config.pad_token_id != config.pad_token_id \
            and config.model_type in ("roberta", "xlm-roberta"):
        raise ModelDirError(f"{model_dir}: the pad id would move ({config.pad_token_id} -> {new_config.pad_token_id}); "
                            "XLM-R's position ids depend on it")
    source_fingerprint = base_fingerprint(model_dir)
    report = {
        "source_model": str(model_dir), "source_fingerprint": source_fingerprint,
        "text_files": [{"path": path, "sha256": file_sha256(Path(path)), "lines": len(file_lines)}
                       for path, file_lines in lines_per_file.items()],
        "rows_before": rows, "rows_after": len(kept), "pieces_before": len(vocab), "tokens": sum(counts.values()),
        "sliced_tensors": sliced,
        "parameters_before": int(sum(t.numel() for t in state.values())),
        "parameters_after": int(sum(t.numel() for t in trimmed_state.values())),
        "trimmed_to_original": kept,
    }

    def build(tmp: Path) -> None:
        new_config.save_pretrained(tmp)
        save_file(trimmed_state, str(tmp / "model.safetensors"), metadata=metadata)
        tokenizer.save_pretrained(tmp)
        (tmp / "tokenizer.json").write_text(json.dumps(trimmed_tokenizer_json(document, kept), ensure_ascii=False),
                                            encoding="utf-8")
        config_path = tmp / "tokenizer_config.json"
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        if "added_tokens_decoder" in tokenizer_config:
            tokenizer_config["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in
                                                        tokenizer_config["added_tokens_decoder"].items()}
            atomic_write_json(config_path, tokenizer_config)
        trimmed = AutoTokenizer.from_pretrained(str(tmp))
        mismatched = 0
        for start in range(0, len(lines), 1000):
            chunk = lines[start:start + 1000]
            for old, new in zip(tokenizer(chunk)["input_ids"], trimmed(chunk)["input_ids"]):
                mismatched += [kept[i] for i in new] != old
        if mismatched:
            logger.warning("%d of %d corpus lines tokenise differently after trimming", mismatched, len(lines))
        report.update(mismatched_lines=mismatched, trimmed_fingerprint=base_fingerprint(tmp))
        atomic_write_json(tmp / TRIM_INFO, report)

    publish_directory(output_dir, build)
    logger.info("trimmed %s: %d -> %d rows, %d -> %d parameters", model_dir, rows, len(kept),
                report["parameters_before"], report["parameters_after"])
    return report


def read_trim_info(trimmed_dir: str | Path) -> dict:
    path = Path(trimmed_dir) / TRIM_INFO
    if not path.is_file():
        raise DataError(f"{path}: missing; {trimmed_dir} is not a folder written by xling trim-vocab")
    info = read_json(path, error=DataError)
    for key in ("trimmed_to_original", "source_fingerprint", "trimmed_fingerprint"):
        if not isinstance(info, dict) or key not in info:
            raise DataError(f"{path}: missing key {key!r}")
    return info


def load_adapter_from_trimmed(host, adapter_dir: str | Path, trimmed_dir: str | Path, name: str | None = None) -> str:
    """Load an adapter trained on the trimmed model into ``host``, a model of the untrimmed source.

    The adapter must record the trimmed model's fingerprint and ``host`` must
    be the source the trimmed model came from; the fingerprints differ only by
    the sliced embedding rows, which no adapter tensor depends on.
    """
    from .adapter_io import load_madx_adapter

    info = read_trim_info(trimmed_dir)
    recorded = str(read_adapter_config(adapter_dir)["base_fingerprint"])
    if recorded != info["trimmed_fingerprint"]:
        raise AdapterFormatError(f"{adapter_dir}: trained on base {recorded}, not on the trimmed model {trimmed_dir} "
                                 f"({info['trimmed_fingerprint']})")
    if host.base_fingerprint() != info["source_fingerprint"]:
        raise FingerprintMismatchError(f"the model is not the one {trimmed_dir} was trimmed from "
                                       f"({info['source_model']}, {info['source_fingerprint']})")
    return load_madx_adapter(host, adapter_dir, name=name, force=True)


# -- command line ----------------------------------------------------------------------------


def add_command(sub) -> None:
    """``xling trim-vocab``."""
    parser = sub.add_parser("trim-vocab", help="keep the vocabulary pieces some corpora use; slice the embedding rows")
    parser.add_argument("--model", required=True, help="local model directory with a SentencePiece Unigram tokenizer")
    parser.add_argument("--text", required=True, nargs="+", help="text files, one sentence per line")
    parser.add_argument("--output-dir", required=True, help="folder for the trimmed model, tokenizer and vocab_trim.json")


def run(args) -> None:
    report = trim_vocabulary(args.model, args.text, args.output_dir)
    print(f"trimmed {report['rows_before']} -> {report['rows_after']} rows "
          f"({report['parameters_before']:,} -> {report['parameters_after']:,} parameters), "
          f"{report['mismatched_lines']} corpus lines tokenised differently -> {args.output_dir}")
