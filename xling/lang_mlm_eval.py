"""Has a language adapter learned its language?  Held-out masked-LM loss of a text under several adapters.

MAD-X (Pfeiffer et al. 2020) trains each language adapter by masked LM on
its language's text, and its swap assumes the adapter has adapted the
encoder to that language.  The test used here: a language's held-out text
scored under the bare encoder, under the source (English) adapter and under
its own adapter; the adapter counts as trained when its own loss is clearly
below the other two (``passes``: lower than both by more than ``margin``
nats).  The masks are fixed (seeded per line, every masked position replaced
by <mask>), so every setting reads the same masked tokens.

``MlmCurve`` is the same measurement during ``xling train-lang``
(``--heldout-text``, ``--eval-steps``): the held-out loss every N steps,
written to ``mlm_curve.json`` in the adapter folder, and optionally the end
of training once the loss falls by less than ``--plateau-delta`` over
``--plateau-window`` steps.

    xling lang-mlm-loss --model e5 --text tr.heldout.txt --adapters bare en=lang-en/adapter tr=lang-tr/adapter \\
        --own tr --output tr.mlm_loss.json
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from .attach import mlm_logits_at
from .data import DataError, read_text

#: The setting name of the encoder without adapters.
BARE = "bare"
#: Written into the adapter folder by ``train-lang --heldout-text``.
CURVE_FILE = "mlm_curve.json"


def heldout_batches(tokenizer, lines: list[str], max_length: int, batch_size: int = 32, seed: int = 1) -> list[dict]:
    """Fixed masked batches of ``lines``: 15% of the tokens, each replaced by <mask> (seeded per line)."""
    from .masking import MASKING_SEED, SeededMaskingCollator, example_seed

    if not lines:
        raise DataError("no held-out lines to score")
    ids = tokenizer(lines, truncation=True, max_length=max_length)["input_ids"]
    features = [{"input_ids": row, MASKING_SEED: example_seed(seed, 0, i)} for i, row in enumerate(ids)]
    collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=0.15, mask_replace_prob=1.0,
                                     random_replace_prob=0.0)
    return [collator(features[i:i + batch_size]) for i in range(0, len(features), batch_size)]


def mlm_loss(model: nn.Module, batches: list[dict]) -> dict:
    """Mean masked-LM cross-entropy (nats) and top-1 accuracy (%) over the masked tokens, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum, hits, total = 0.0, 0, 0
    with torch.no_grad():
        for batch in batches:
            labels = batch["labels"].to(device)
            positions = labels != -100
            if not positions.any():
                continue
            with mlm_logits_at(model, positions):
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits
            targets = labels[positions]
            loss_sum += float(nn.functional.cross_entropy(logits.float(), targets, reduction="sum"))
            hits += int((logits.argmax(-1) == targets).sum())
            total += int(targets.numel())
    model.train(was_training)
    return {"loss": loss_sum / max(total, 1), "accuracy": 100.0 * hits / max(total, 1), "masked_tokens": total}


def compare_adapters(model_dir: str | Path, text_file: str | Path, adapters: dict[str, str | None],
                     max_length: int = 64, max_lines: int = 0, force: bool = False) -> dict:
    """Held-out MLM loss of ``text_file`` under each setting: ``{name: adapter dir, or None for the bare encoder}``."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from .adapter_io import load_madx_adapter
    from .attach import TransformersHost
    from .train import check_tokenizer_fits, from_model_dir

    lines = read_text(text_file)
    if max_lines:
        lines = lines[:max_lines]
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = from_model_dir(AutoModelForMaskedLM, model_dir)
    check_tokenizer_fits(tokenizer, model, model_dir)
    host = TransformersHost(model)
    loaded = {name: load_madx_adapter(host, path, name=name, force=force, role="language")
              for name, path in adapters.items() if path is not None}
    batches = heldout_batches(tokenizer, lines, max_length)
    scores = {}
    for name, path in adapters.items():
        host.set_active(loaded[name] if path is not None else None)
        scores[name] = {**mlm_loss(model, batches), "adapter": None if path is None else str(path)}
    host.set_active(None)
    return {"model": str(model_dir), "text": str(text_file), "lines": len(lines), "max_length": max_length,
            "settings": scores}


def passes(scores: dict, own: str, margin: float) -> bool:
    """True when ``own``'s loss is below every other setting's by more than ``margin``."""
    others = [s["loss"] for name, s in scores["settings"].items() if name != own]
    return bool(others) and all(scores["settings"][own]["loss"] < other - margin for other in others)


def add_command(sub) -> None:
    """``xling lang-mlm-loss``."""
    parser = sub.add_parser("lang-mlm-loss", help="held-out masked-LM loss of a text under the bare encoder and "
                            "language adapters (has the language adapter learned its language?)")
    parser.add_argument("--model", required=True, help="model directory with its MLM head (train-mlm-head)")
    parser.add_argument("--text", required=True, help="held-out text of one language, one line each")
    parser.add_argument("--adapters", required=True, nargs="+",
                        help="settings: 'bare' (no adapter) and NAME=ADAPTER_DIR, e.g. bare en=lang-en/adapter")
    parser.add_argument("--own", help="the setting of the text's own language: checked to be below the others")
    parser.add_argument("--margin", type=float, default=0.05, help="nats by which --own must be below the others")
    parser.add_argument("--max-length", type=int, default=64, help="longest line in tokens")
    parser.add_argument("--max-lines", type=int, default=0, help="score only the first N lines (0: all)")
    parser.add_argument("--force", action="store_true", help="load adapters made for another base")
    parser.add_argument("--output", required=True, help="results JSON file")


def parse_settings(items: list[str]) -> dict[str, str | None]:
    settings: dict[str, str | None] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if item == BARE:
            settings[BARE] = None
        elif not sep or not name or not path:
            raise ValueError(f"--adapters: expected 'bare' or NAME=DIR, got {item!r}")
        else:
            settings[name] = path
    return settings


def run(args) -> None:
    from adapter_core import atomic_write_json

    settings = parse_settings(args.adapters)
    if args.own is not None and args.own not in settings:
        raise ValueError(f"--own {args.own!r} is not among the settings {', '.join(settings)}")
    scores = compare_adapters(args.model, args.text, settings, args.max_length, args.max_lines, args.force)
    if args.own is not None:
        scores.update(own=args.own, margin=args.margin, passes=passes(scores, args.own, args.margin))
    atomic_write_json(Path(args.output), scores)
    table = ", ".join(f"{name} {s['loss']:.3f}" for name, s in scores["settings"].items())
    verdict = "" if args.own is None else f"; {args.own}: {'PASS' if scores['passes'] else 'FAIL'}"
    print(f"held-out MLM loss ({scores['settings'][next(iter(settings))]['masked_tokens']} masked tokens): "
          f"{table}{verdict} -> {args.output}")


def read_curve(adapter_dir: str | Path) -> dict | None:
    path = Path(adapter_dir) / CURVE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
