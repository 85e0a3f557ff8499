"""Load checkpoints as fairseq-generate does, and build batches by hand."""

from __future__ import annotations

from pathlib import Path

import torch

TRAIN_PAIRS = ["en-de", "de-en", "en-fr", "fr-en"]
LANG_FLAGS = ["--lang-pairs", ",".join(TRAIN_PAIRS), "--langs", "en,de,fr", "--encoder-langtok", "src",
              "--decoder-langtok"]
SHAPE_FLAGS = ["--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "32",
               "--decoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
               "--encoder-attention-heads", "2", "--decoder-attention-heads", "2", "--share-all-embeddings"]
TRAIN_FLAGS = ["--optimizer", "adam", "--lr", "0.01", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "20",
               "--max-tokens", "300", "--dropout", "0", "--cpu", "--seed", "1", "--no-epoch-checkpoints",
               "--log-format", "simple", "--log-interval", "100", "--num-workers", "0", "--no-progress-bar"]
USER_DIR = str(Path(__file__).resolve().parents[2] / "nmt")
ADAPTER_DIM = 8


def run_train(argv: list[str]) -> None:
    """fairseq-train, in-process (as fairseq's own tests do), as a fresh process would run it."""
    from fairseq import checkpoint_utils, options
    from fairseq_cli import train

    # fairseq keeps the best validation loss so far on a function attribute, for the process's lifetime: without
    # this, a run after another run's better loss writes no checkpoint_best.pt.
    if hasattr(checkpoint_utils.save_checkpoint, "best"):
        del checkpoint_utils.save_checkpoint.best

    parser = options.get_training_parser()
    train.main(options.parse_args_and_arch(parser, argv))


def adapter_train_argv(data: Path, base: Path, save_dir: Path, *extra: str) -> list[str]:
    return [str(data), "--user-dir", USER_DIR, "--task", "adapter_translation", *LANG_FLAGS,
            "--arch", "adapter_transformer", *SHAPE_FLAGS, "--adapter-dim", str(ADAPTER_DIM),
            "--finetune-from-model", str(base / "checkpoint_best.pt"), *TRAIN_FLAGS,
            "--save-dir", str(save_dir), *extra]




def load(data: Path, checkpoint: Path, src: str = "en", tgt: str = "de", *extra: str):
    """(task, model, args) exactly as fairseq-generate builds them from its command line."""
    from fairseq import checkpoint_utils, options, tasks

    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(parser, [
        str(data), "--user-dir", USER_DIR, "--task", "adapter_translation", *LANG_FLAGS, "-s", src, "-t", tgt,
        "--path", str(checkpoint), "--cpu", "--beam", "3", *extra])
    task = tasks.setup_task(args)
    models, _ = checkpoint_utils.load_model_ensemble([str(checkpoint)], task=task)
    return task, models[0].eval(), args


def make_sample(task, items):
    """A collated batch from (src_lang, tgt_lang, sentence) triples, with per-sample language ids."""
    from fairseq.data import data_utils

    dictionary, manager = task.source_dictionary, task.data_manager
    rows = []
    for src, tgt, text in items:
        tokens = dictionary.encode_line(text, add_if_not_exist=False, append_eos=True).long()
        langtok = dictionary.index(f"__{src}__")  # --encoder-langtok src, multilingual style
        rows.append(torch.cat([torch.tensor([langtok]), tokens]))
    lengths = torch.tensor([len(r) for r in rows])
    lang_id = manager.lang_dict.index
    return {
        "id": torch.arange(len(items)), "nsentences": len(items), "ntokens": int(lengths.sum()), "target": None,
        "net_input": {"src_tokens": data_utils.collate_tokens(rows, dictionary.pad(), left_pad=True),
                      "src_lengths": lengths,
                      "src_lang_id": torch.tensor([[lang_id(s)] for s, _, _ in items])},
        "tgt_lang_id": torch.tensor([[lang_id(t)] for _, t, _ in items]),
    }


def generate(task, model, sample, beam: int = 3) -> list[list[int]]:
    """Best hypothesis (token ids) per sentence, through the task's inference_step."""
    from fairseq.dataclass.configs import GenerationConfig

    generator = task.build_generator([model], GenerationConfig(beam=beam))
    hypos = task.inference_step(generator, [model], sample)
    return [h[0]["tokens"].tolist() for h in hypos]


def logits(model, sample, encoder_keys, decoder_keys) -> torch.Tensor:
    """Teacher-forced output scores with the given keys per sample (source tokens as decoder input)."""
    from nmt.routing import AdapterRoute

    net = sample["net_input"]
    with torch.no_grad():
        out, _ = model(net["src_tokens"], net["src_lengths"], net["src_tokens"],
                       adapter_route=AdapterRoute.from_keys(encoder_keys, decoder_keys))
    return out


def route_of(model, sample):
    """The ``AdapterRoute`` the model looks up for ``sample``'s language ids."""
    return model.adapter_route(sample["net_input"]["src_lang_id"], sample["tgt_lang_id"])
