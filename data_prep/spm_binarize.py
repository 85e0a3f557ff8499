"""SentencePiece on the union of languages, then fairseq binarisation with one joined dictionary.

Input: a raw directory in fairseq naming (``<split>.<a>-<b>.<a|b>``, as every
data_prep script writes).  Output under ``out_dir``:

* ``spm.model`` / ``spm.vocab``: trained on the train text of every language,
  at most ``max_lines_per_lang`` lines each, so big languages don't crowd out
  small ones;
* ``spm/<split>.<a>-<b>.<lang>``: the encoded text;
* ``dict.txt``: the fairseq dictionary made from the SentencePiece vocabulary,
  shared by every language (``--joined-dictionary --srcdict``), so that all
  directions index the same embeddings;
* ``bin/``: ``fairseq-preprocess`` output for every pair found (train, valid,
  test; test-only pairs such as the multi-way zero-shot sets too);
* ``langs.txt`` (comma-separated, for ``--langs`` of
  ``translation_multi_simple_epoch``) and ``lang_pairs.txt`` (the pairs with
  train data, for ``--lang-pairs``).

Each step is skipped when the manifest says its inputs are unchanged and
its outputs are intact; a changed input redoes that step and everything
after it.  Every file lands by atomic rename; fairseq-preprocess writes into
a temporary folder first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from adapter_core.io import atomic_write_text

from .common import SPLITS, DataPrepError, Manifest, count_utf8_lines, file_sha256, fingerprint, text_file_lines

logger = logging.getLogger("data_prep.spm")
FILE_NAME = re.compile(r"^(train|valid|test)\.([A-Za-z0-9_@]+)-([A-Za-z0-9_@]+)\.([A-Za-z0-9_@]+)$")


@dataclass
class SpmBinarizeConfig:
    # SentencePiece vocabulary size (shared by every language)
    vocab_size: int = 8000
    # SentencePiece model type: unigram or bpe
    model_type: str = "unigram"
    # share of characters the model must cover
    character_coverage: float = 0.9995
    # at most this many train lines per language go into SentencePiece training
    max_lines_per_lang: int = 100000
    # fairseq-preprocess --workers
    workers: int = 1
    # an earlier spm-bin output whose spm.model and dict.txt are reused (no training); "" trains anew
    spm_from: str = ""


def discover(raw_dir: Path) -> dict[tuple[str, str], dict[str, Path]]:
    """(a, b) -> {split: prefix} for each complete pair of files in ``raw_dir``."""
    found: dict = {}
    for path in sorted(Path(raw_dir).iterdir()):
        match = FILE_NAME.match(path.name)
        if not match:
            continue
        split, a, b, lang = match.groups()
        if lang not in (a, b):
            continue
        other = Path(raw_dir) / f"{split}.{a}-{b}.{b if lang == a else a}"
        if not other.exists():
            raise DataPrepError(f"{path}: its other side {other} is missing")
        found.setdefault((a, b), {})[split] = Path(raw_dir) / f"{split}.{a}-{b}"
    if not found:
        raise DataPrepError(f"{raw_dir}: no parallel files named <split>.<src>-<tgt>.<lang>")
    return found


def train_spm(raw_dir: Path, pairs: dict, out_dir: Path, config: SpmBinarizeConfig, manifest: Manifest) -> Path:
    import sentencepiece as spm

    per_lang: dict[str, list[Path]] = {}
    for (a, b), splits in pairs.items():
        if "train" in splits:
            for lang in (a, b):
                per_lang.setdefault(lang, []).append(Path(f"{splits['train']}.{lang}"))
    if not per_lang:
        raise DataPrepError(f"{raw_dir}: no train files to learn SentencePiece from")
    model = out_dir / "spm.model"
    key = fingerprint(asdict(config), {lang: [[str(p), file_sha256(p)] for p in files] for lang, files in per_lang.items()})
    if manifest.is_done("spm", key):
        return model
    # A fixed folder and relative names: SentencePiece stores its input path and model prefix in spm.model,
    # so a random temporary path made two clean runs' models differ byte for byte.
    work = out_dir / ".spm-training"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with open(work / "union.txt", "w", encoding="utf-8") as handle:
            for lang, files in sorted(per_lang.items()):
                lines = list(dict.fromkeys(line for f in files for line in text_file_lines(f)[0] if line))
                handle.writelines(line + "\n" for line in lines[: config.max_lines_per_lang])
        logger.info("training SentencePiece (%s, %d pieces) on %d languages", config.model_type, config.vocab_size,
                    len(per_lang))
        try:
            with contextlib.chdir(work):
                spm.SentencePieceTrainer.train(
                    input="union.txt", model_prefix="spm", vocab_size=config.vocab_size,
                    model_type=config.model_type, character_coverage=config.character_coverage,
                    input_sentence_size=0, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
                    minloglevel=2, num_threads=max(1, config.workers), hard_vocab_limit=False)
        except RuntimeError as err:
            raise DataPrepError(f"SentencePiece training on {raw_dir} failed: {err}") from None
        for suffix in ("model", "vocab"):
            os.replace(work / f"spm.{suffix}", out_dir / f"spm.{suffix}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    manifest.mark_done("spm", key, [out_dir / "spm.model", out_dir / "spm.vocab"])
    return model


def reuse_spm(source: Path, out_dir: Path) -> Path:
    """Copy spm.model, spm.vocab and dict.txt of an earlier spm-bin output (same pieces, same ids)."""
    for name in ("spm.model", "spm.vocab", "dict.txt"):
        if not (source / name).is_file():
            raise DataPrepError(f"{source / name}: missing; --spm-from needs the output folder of an earlier spm-bin")
        target = out_dir / name
        if not target.exists() or file_sha256(target) != file_sha256(source / name):
            shutil.copyfile(source / name, out_dir / f".{name}.tmp")
            os.replace(out_dir / f".{name}.tmp", target)
    return out_dir / "spm.model"


def write_fairseq_dict(out_dir: Path, manifest: Manifest) -> Path:
    """dict.txt from spm.vocab: every piece except the specials fairseq adds itself."""
    vocab, target = out_dir / "spm.vocab", out_dir / "dict.txt"
    key = file_sha256(vocab)
    if not manifest.is_done("dict", key):
        pieces = [line.split("\t")[0] for line in vocab.read_text("utf-8").splitlines()]
        pieces = [p for p in pieces if p not in ("<unk>", "<s>", "</s>", "<pad>") and not p.isspace() and p]
        atomic_write_text(target, "".join(f"{p} 1\n" for p in pieces))
        manifest.mark_done("dict", key, [target])
    return target


def encode_all(pairs: dict, model: Path, out_dir: Path, manifest: Manifest) -> dict[str, int]:
    """Encode every split with SentencePiece; returns {file: characters turned into spaces} where any were."""
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=str(model))
    model_sha = file_sha256(model)
    replaced: dict[str, int] = {}
    for (a, b), splits in sorted(pairs.items()):
        for split, prefix in splits.items():
            for lang in (a, b):
                source = Path(f"{prefix}.{lang}")
                target = out_dir / "spm" / source.name
                key = fingerprint(model_sha, file_sha256(source))
                if manifest.is_done(f"encode:{source.name}", key):
                    continue
                lines, changed = text_file_lines(source)
                if changed:
                    replaced[source.name] = changed
                    logger.warning("%s: %d line-break characters inside lines (U+2028, form feed, CR, ...) "
                                   "encoded as spaces", source, changed)
                pieces = processor.encode(lines, out_type=str)
                atomic_write_text(target, "".join(" ".join(p) + "\n" for p in pieces))
                manifest.mark_done(f"encode:{source.name}", key, [target])
    return replaced


def run_fairseq_preprocess(arguments: list[str], what: str) -> None:
    """fairseq-preprocess in this process (one fairseq import for all pairs, not one per pair)."""
    from fairseq import options
    from fairseq_cli import preprocess

    logger.info("fairseq-preprocess %s", " ".join(arguments))
    # preprocess.main adds a FileHandler (its destdir/preprocess.log) to its own
    # logger on every call; remove it afterwards, or the next pair's messages
    # would be appended to this pair's log after it was moved into place.
    loggers = [logging.getLogger(), logging.getLogger("fairseq_cli.preprocess")]
    before = [list(lg.handlers) for lg in loggers]
    try:
        preprocess.main(options.get_preprocessing_parser().parse_args(arguments))
    except (SystemExit, Exception) as err:  # fairseq reports bad input by asserting or exiting
        raise DataPrepError(f"fairseq-preprocess failed for {what}: {type(err).__name__}: {err}") from None
    finally:
        for lg, handlers in zip(loggers, before):
            for handler in lg.handlers[:]:
                if handler not in handlers:
                    lg.removeHandler(handler)
                    handler.close()


def binarize_pair(a: str, b: str, splits: dict, out_dir: Path, workers: int, manifest: Manifest) -> None:
    encoded = {split: out_dir / "spm" / f"{split}.{a}-{b}" for split in splits}
    dictionary = out_dir / "dict.txt"
    key = fingerprint(file_sha256(dictionary), {s: [file_sha256(Path(f"{p}.{lang}")) for lang in (a, b)]
                                                for s, p in sorted(encoded.items())})
    if manifest.is_done(f"bin:{a}-{b}", key):
        return
    bin_dir = out_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".bin-{a}-{b}-") as tmp:
        command = ["--source-lang", a, "--target-lang", b, "--destdir", tmp, "--srcdict", str(dictionary),
                   "--joined-dictionary", "--workers", str(workers), "--dataset-impl", "mmap"]
        for split in SPLITS:
            if split in encoded:
                command += [f"--{split}pref", str(encoded[split])]
        if "train" not in encoded:  # test-only (multi-way) pairs: fairseq wants a trainpref; use test as a stand-in
            command += ["--trainpref", str(encoded.get("valid", encoded["test"]))]
        run_fairseq_preprocess(command, f"{a}-{b}")
        outputs = []
        for path in sorted(Path(tmp).iterdir()):
            if "train" not in encoded and path.name.startswith("train."):
                continue
            target = bin_dir / (f"preprocess.{a}-{b}.log" if path.name == "preprocess.log" else path.name)
            os.replace(path, target)
            outputs.append(target)
    manifest.mark_done(f"bin:{a}-{b}", key, outputs)


def prepare(raw_dir: Path, out_dir: Path, config: SpmBinarizeConfig = SpmBinarizeConfig()) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    pairs = discover(raw_dir)
    # Every input is checked (line counts, UTF-8) before --output-dir is made or anything is written into it.
    for (a, b), splits in pairs.items():
        for split, prefix in splits.items():
            counts = {lang: count_utf8_lines(Path(f"{prefix}.{lang}")) for lang in (a, b)}
            if counts[a] != counts[b]:
                raise DataPrepError(f"parallel files differ in length: {prefix}.{a} has {counts[a]} lines, "
                                    f"{prefix}.{b} has {counts[b]} lines")
            if counts[a] == 0:
                raise DataPrepError(f"empty corpus: {prefix}.{a} / {prefix}.{b} have no lines")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir)
    if config.spm_from:
        model = reuse_spm(Path(config.spm_from), out_dir)
    else:
        model = train_spm(raw_dir, pairs, out_dir, config, manifest)
        write_fairseq_dict(out_dir, manifest)
    replaced = encode_all(pairs, model, out_dir, manifest)
    for (a, b), splits in sorted(pairs.items()):
        binarize_pair(a, b, splits, out_dir, config.workers, manifest)
    langs = sorted({lang for pair in pairs for lang in pair})
    train_pairs = sorted(f"{a}-{b}" for (a, b), splits in pairs.items() if "train" in splits)
    atomic_write_text(out_dir / "langs.txt", ",".join(langs) + "\n")
    atomic_write_text(out_dir / "lang_pairs.txt", ",".join(train_pairs) + "\n")
    # translation_multi_simple_epoch looks for dict.<lang>.txt of every language in the data dir
    for lang in langs:
        target = out_dir / "bin" / f"dict.{lang}.txt"
        if not target.exists() or target.read_bytes() != (out_dir / "dict.txt").read_bytes():
            shutil.copyfile(out_dir / "dict.txt", out_dir / "bin" / f".dict.{lang}.tmp")
            os.replace(out_dir / "bin" / f".dict.{lang}.tmp", target)
    return {"langs": langs, "train_pairs": train_pairs, "pairs": sorted(f"{a}-{b}" for a, b in pairs),
            "bin_dir": str(out_dir / "bin"), "spm_model": str(model), "line_breaks_made_spaces": replaced}
