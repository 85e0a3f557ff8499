"""An MLM head for an encoder that has none (multilingual-e5 was trained contrastively), body frozen.

MAD-X (Pfeiffer et al. 2020) trains language adapters with masked language
modelling, so the base needs an MLM head.  This trains BERT's head (Devlin et
al. 2019): the transform dense -> GELU -> LayerNorm and a decoder whose
weight is the input embedding matrix (tied, so frozen with the embeddings)
plus a per-token bias.  Only the transform and the bias learn; the encoder
runs under ``no_grad`` in eval mode (no dropout: it is frozen, so its
features are fixed, as in a linear probe; BERT pretraining had dropout on).

Masking is xling's (``SeededMaskingCollator``: 15%, 80/10/10, one seed per
example and epoch).  Accuracy is masked-token top-1 on held-out lines, each
masked position replaced by <mask> (the same masks before and after), and
is written with the loss to ``mlm_head.json`` in the output folder.  The
output is a ``*ForMaskedLM`` folder that ``xling train-lang`` loads; the
files recording where the base came from (``e5_manifest.json``,
``vocab_trim.json``) are copied along (the encoder, and so its fingerprint,
is unchanged).

    OMP_NUM_THREADS=1 xling train-mlm-head --model work/e5/model --text de.txt sw.txt \\
        --output-dir work/e5/model-mlm --max-steps 300
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .data import DataError, ModelDirError, read_text

logger = logging.getLogger(__name__)
RESULTS = "mlm_head.json"
#: Provenance files of the base folder, copied into the output.
PROVENANCE = ("e5_manifest.json", "vocab_trim.json")


@dataclass
class MlmHeadConfig:
    """Budget and optimisation of ``train_mlm_head``."""

    # Optimizer steps.
    max_steps: int = 300
    # Lines per step.
    batch_size: int = 32
    # Peak learning rate of AdamW (linear warm-up over 5% of the steps, then linear decay to 0).
    learning_rate: float = 1e-3
    # AdamW weight decay (not applied to LayerNorm parameters and biases).
    weight_decay: float = 0.01
    # Longest input in tokens (longer lines are truncated).
    max_length: int = 128
    # Lines held out for the accuracy, at most a fifth of all lines.
    heldout_lines: int = 500
    # Share of the tokens masked (BERT: 0.15).
    mask_probability: float = 0.15
    # Random seed: held-out split, data order, masks, head initialisation.
    seed: int = 0
    # Lines per batch when measuring accuracy.
    eval_batch_size: int = 64


def split_lines(lines: list[str], heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded shuffle, then (training lines, held-out lines); held out: at most a fifth, at least one."""
    if len(lines) < 2:
        raise DataError(f"need at least 2 lines of text to hold some out, got {len(lines)}")
    shuffled = list(lines)
    random.Random(seed).shuffle(shuffled)
    count = max(1, min(heldout, len(shuffled) // 5))
    return shuffled[count:], shuffled[:count]


def head_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters outside the encoder (``base_model``): the MLM head, minus the tied decoder weight."""
    base = {id(p) for p in model.base_model.parameters()}
    return {name: p for name, p in model.named_parameters() if id(p) not in base}


class FrozenBodyMlm:
    """Masked-LM logits at the masked positions only, the encoder under ``no_grad``."""

    def __init__(self, model: nn.Module):
        from .attach import mlm_head

        self.model, self.body, self.head = model, model.base_model, mlm_head(model)
        if self.head is None:
            raise ModelDirError(f"{type(model).__name__} has no MLM head")
        decoder = model.get_output_embeddings()
        if decoder is None or decoder.weight is not model.get_input_embeddings().weight:
            raise ModelDirError(f"{type(model).__name__}: the decoder is not tied to the input embeddings")

    def loss_and_hits(self, batch: dict) -> tuple[torch.Tensor, int, int]:
        """Cross-entropy over the masked positions, and (correct top-1, masked positions)."""
        with torch.no_grad():
            hidden = self.body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        positions = batch["labels"] != -100
        targets = batch["labels"][positions]
        logits = self.head(hidden[positions])
        loss = nn.functional.cross_entropy(logits.float(), targets)
        return loss, int((logits.argmax(-1) == targets).sum()), int(targets.numel())


def _batches(features: list[dict], size: int, collator) -> list[dict]:
    return [collator(features[i:i + size]) for i in range(0, len(features), size)]


def evaluate(runner: FrozenBodyMlm, batches: list[dict]) -> dict:
    """Masked-token top-1 accuracy (%) and mean loss over fixed, pre-masked batches."""
    runner.model.eval()
    hits = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for batch in batches:
            loss, correct, count = runner.loss_and_hits(batch)
            hits, total, loss_sum = hits + correct, total + count, loss_sum + float(loss) * count
    return {"accuracy": 100.0 * hits / max(total, 1), "loss": loss_sum / max(total, 1), "masked_tokens": total}


def train_mlm_head(model_dir: str | Path, text_files: list[str], output_dir: str | Path,
                   config: MlmHeadConfig = MlmHeadConfig()) -> dict:
    """Train the MLM head of ``model_dir`` on ``text_files``; write the model to ``output_dir``; returns the results."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForMaskedLM, AutoTokenizer, get_linear_schedule_with_warmup

    from adapter_core import atomic_write_json

    from .masking import MASKING_SEED, SeededMaskingCollator, example_seed
    from .train import from_model_dir, publish_directory

    if config.max_steps < 0 or config.batch_size < 1:
        raise ValueError(f"--max-steps must be >= 0 and --batch-size >= 1, got {config.max_steps}, {config.batch_size}")
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    lines = [line for path in text_files for line in read_text(path)]
    train_lines, heldout_lines = split_lines(lines, config.heldout_lines, config.seed)
    torch.manual_seed(config.seed)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model, loading = from_model_dir(AutoModelForMaskedLM, model_dir, tie_word_embeddings=True, output_loading_info=True)
    runner = FrozenBodyMlm(model)
    head = head_parameters(model)
    fresh = sorted(k for k in loading.get("missing_keys", []) if not k.startswith(model.base_model_prefix + "."))
    for param in model.parameters():
        param.requires_grad_(False)
    for param in head.values():
        param.requires_grad_(True)

    def encode(texts: list[str], seed: int) -> list[dict]:
        ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
        return [{"input_ids": row, MASKING_SEED: example_seed(seed, 0, i)} for i, row in enumerate(ids)]

    eval_collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=config.mask_probability,
                                          mask_replace_prob=1.0, random_replace_prob=0.0)
    eval_batches = _batches(encode(heldout_lines, config.seed + 1), config.eval_batch_size, eval_collator)
    before = evaluate(runner, eval_batches)
    logger.info("before: masked-token accuracy %.2f%%, loss %.3f (%d masked tokens)", before["accuracy"],
                before["loss"], before["masked_tokens"])

    train_ids = tokenizer(train_lines, truncation=True, max_length=config.max_length)["input_ids"]
    collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=config.mask_probability,
                                     mask_replace_prob=0.8, random_replace_prob=0.1)
    decay = [p for n, p in head.items() if p.ndim > 1]
    no_decay = [p for n, p in head.items() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, config.max_steps // 20), max(1, config.max_steps))
    order = torch.Generator().manual_seed(config.seed)
    permutation, cursor, epoch = torch.randperm(len(train_ids), generator=order).tolist(), 0, 0
    runner.body.eval()
    runner.head.train()
    started, running = time.perf_counter(), None
    progress = tqdm(range(config.max_steps), desc="mlm head", unit="step", dynamic_ncols=True)
    for _ in progress:
        picked = []
        while len(picked) < config.batch_size:
            if cursor == len(permutation):
                permutation, cursor, epoch = torch.randperm(len(train_ids), generator=order).tolist(), 0, epoch + 1
            index = permutation[cursor]
            picked.append({"input_ids": train_ids[index], MASKING_SEED: example_seed(config.seed, epoch, index)})
            cursor += 1
        loss, _, count = runner.loss_and_hits(collator(picked))
        if count == 0:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        running = value if running is None else 0.9 * running + 0.1 * value
        progress.set_postfix(loss=f"{running:.3f}")
    seconds = time.perf_counter() - started
    after = evaluate(runner, eval_batches)
    logger.info("after %d steps: masked-token accuracy %.2f%%, loss %.3f", config.max_steps, after["accuracy"],
                after["loss"])
    results = {"model": str(model_dir), "text_files": [str(p) for p in text_files], "train_lines": len(train_lines),
               "heldout_lines": len(heldout_lines), "before": before, "after": after, "steps": config.max_steps,
               "seconds": round(seconds, 2), "seconds_per_step": round(seconds / max(1, config.max_steps), 4),
               "trainable_parameters": int(sum(p.numel() for p in head.values())),
               "trainable_tensors": sorted(head), "initialised_from_scratch": fresh, "config": asdict(config),
               "threads": torch.get_num_threads()}
    model.config.architectures = [type(model).__name__]

    def build(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in PROVENANCE:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, tmp / name)
        atomic_write_json(tmp / RESULTS, results)

    publish_directory(output_dir, build)
    return results


# -- command line ----------------------------------------------------------------------------


def add_command(sub) -> None:
    """``xling train-mlm-head``."""
    parser = sub.add_parser("train-mlm-head", help="train an MLM head (transform + tied decoder bias) on a frozen encoder")
    parser.add_argument("--model", required=True, help="local model directory (e.g. written by import-e5 or trim-vocab)")
    parser.add_argument("--text", required=True, nargs="+", help="text files, one sentence per line (some held out)")
    parser.add_argument("--output-dir", required=True, help="folder for the model with its MLM head and mlm_head.json")
    defaults = MlmHeadConfig()
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="lines per step")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="peak AdamW learning rate")
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="longest input in tokens")
    parser.add_argument("--heldout-lines", type=int, default=defaults.heldout_lines,
                        help="lines held out for the accuracy (at most a fifth of the text)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")


def run(args) -> None:
    config = MlmHeadConfig(max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                           max_length=args.max_length, heldout_lines=args.heldout_lines, seed=args.seed)
    results = train_mlm_head(args.model, args.text, args.output_dir, config)
    print(f"MLM head: masked-token accuracy {results['before']['accuracy']:.2f}% -> {results['after']['accuracy']:.2f}% "
          f"on {results['after']['masked_tokens']} held-out tokens, {results['seconds_per_step']:.3f} s/step "
          f"-> {Path(args.output_dir) / RESULTS}")
