"""An MLM head for an encoder that has none (multilingual-e5 was trained contrastively), body frozen.

MAD-X (Pfeiffer et al. 2020) trains language adapters with masked language
modelling, so the base needs an MLM head.  This trains BERT's head (Devlin et
al. 2019): the transform dense -> GELU -> LayerNorm and a decoder whose
weight is the input embedding matrix (tied, so frozen with the embeddings)
plus a per-token bias.  Only the transform and the bias learn; the encoder
runs under ``no_grad`` in eval mode (no dropout: it is frozen, so its
features are fixed, as in a linear probe; BERT pretraining had dropout on).

Cheap because the body is frozen: the encoder's last hidden states at the
masked positions of ``mask_passes`` masked copies of the training lines
(xling's ``SeededMaskingCollator``: 15%, 80/10/10, one seed per line and
pass) are computed once and cached; every step then draws
``tokens_per_step`` cached positions, so a step costs the head alone (the
vocabulary projection), not an encoder forward.  The head reads the *last*
hidden state, as BERT's and MAD-X's: a head on a middle layer predicts
better here (the issue measured 9-12% at layers 2-8), but the language
adapters of the layers above it would get no MLM gradient at all.

Accuracy is masked-token top-1 on held-out lines, each masked position
replaced by <mask> (the same masks throughout), measured every
``eval_every`` steps: the curve, and the plateau (the first step where the
accuracy gained less than ``plateau_gain`` points over ``plateau_window``
steps; ``stop_at_plateau`` ends training there), go with the loss to
``mlm_head.json`` in the output folder.  The output is a ``*ForMaskedLM``
folder that ``xling train-lang`` loads; the provenance files of the base
(``e5_manifest.json``, ``vocab_trim.json``) are copied along (the encoder,
and so its fingerprint, is unchanged).

Users get a trained head without retraining from a cache keyed by the base
encoder's fingerprint, the sha256 of each text file and the training
settings (``<cache>/mlm-heads/<key>/``, the cache of ``data_prep.registry``):
the head belongs to one trimmed vocabulary and one text, so a committed file
would match only the base it was made on, and the key makes a stale head
impossible to pick up.

    OMP_NUM_THREADS=1 xling train-mlm-head --model work/e5/model --text de.txt sw.txt \\
        --output-dir work/e5/model-mlm --max-steps 2000
"""

from __future__ import annotations

import hashlib
import json
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
#: The cached head's tensors, in ``<cache>/mlm-heads/<key>/``.
HEAD_FILE = "head.safetensors"


@dataclass
class MlmHeadConfig:
    """Budget and optimisation of ``train_mlm_head``."""

    # Optimizer steps of the head (at most: see stop_at_plateau).
    max_steps: int = 2000
    # Masked positions per step, drawn from the cached encoder outputs.
    tokens_per_step: int = 2048
    # Masked copies of the training lines whose encoder outputs are cached (each with fresh masks).
    mask_passes: int = 2
    # Lines per encoder forward while caching.
    batch_size: int = 32
    # Peak learning rate of AdamW (linear warm-up over 5% of the steps, then held).
    learning_rate: float = 1e-3
    # AdamW weight decay (not applied to LayerNorm parameters and biases).
    weight_decay: float = 0.01
    # Longest input in tokens (longer lines are truncated).
    max_length: int = 128
    # Lines read from each text file, the first ones (0: all); caching costs one encoder forward per line and pass.
    max_lines: int = 0
    # Lines held out for the accuracy, at most a fifth of all lines.
    heldout_lines: int = 500
    # Share of the tokens masked (BERT: 0.15).
    mask_probability: float = 0.15
    # Random seed: held-out split, masks, draw order, head initialisation.
    seed: int = 0
    # Held-out accuracy every this many steps (the curve; 0: only before and after).
    eval_every: int = 250
    # The plateau: less than this many accuracy points gained over plateau_window steps.
    plateau_gain: float = 0.5
    # Steps over which the plateau's gain is measured (a multiple of eval_every).
    plateau_window: int = 500
    # End training at the plateau instead of at max_steps.
    stop_at_plateau: bool = False


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
    """The frozen encoder's hidden states at masked positions, and the head's loss on them."""

    def __init__(self, model: nn.Module):
        from .attach import mlm_head

        self.model, self.body, self.head = model, model.base_model, mlm_head(model)
        if self.head is None:
            raise ModelDirError(f"{type(model).__name__} has no MLM head")
        decoder = model.get_output_embeddings()
        if decoder is None or decoder.weight is not model.get_input_embeddings().weight:
            raise ModelDirError(f"{type(model).__name__}: the decoder is not tied to the input embeddings")

    def masked_states(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden states at the masked positions, their target ids), on ``device``."""
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.no_grad():
            hidden = self.body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        positions = batch["labels"] != -100
        return hidden[positions], batch["labels"][positions]

    def loss_and_hits(self, states: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Cross-entropy over the given positions, and their correct top-1 count."""
        logits = self.head(states.to(self.head_dtype))
        loss = nn.functional.cross_entropy(logits.float(), targets)
        return loss, int((logits.argmax(-1) == targets).sum())

    @property
    def head_dtype(self) -> torch.dtype:
        return next(self.head.parameters()).dtype


def cache_states(runner: FrozenBodyMlm, features: list[dict], batch_size: int, collator,
                 device: torch.device, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder outputs at the masked positions of ``features`` (collated ``batch_size`` at a time, longest first)."""
    from tqdm.auto import tqdm

    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    states, targets = [], []
    runner.body.eval()
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", dynamic_ncols=True, leave=False):
        hidden, target = runner.masked_states(collator([features[i] for i in order[start:start + batch_size]]), device)
        states.append(hidden.to(torch.float16))  # the cache's size halves; the head reads them back in its dtype
        targets.append(target)
    width = runner.body.config.hidden_size
    if not states:
        return torch.zeros((0, width), dtype=torch.float16, device=device), torch.zeros(0, dtype=torch.long, device=device)
    return torch.cat(states), torch.cat(targets)


def evaluate(runner: FrozenBodyMlm, states: torch.Tensor, targets: torch.Tensor, chunk: int = 4096) -> dict:
    """Masked-token top-1 accuracy (%) and mean loss over cached held-out positions."""
    runner.head.eval()
    hits, loss_sum = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(targets), chunk):
            loss, correct = runner.loss_and_hits(states[start:start + chunk], targets[start:start + chunk])
            hits, loss_sum = hits + correct, loss_sum + float(loss) * len(targets[start:start + chunk])
    runner.head.train()
    total = int(len(targets))
    return {"accuracy": 100.0 * hits / max(total, 1), "loss": loss_sum / max(total, 1), "masked_tokens": total}


def plateau_step(curve: list[dict], gain: float, window: int) -> int | None:
    """The first step whose accuracy exceeds that ``window`` steps earlier by less than ``gain`` points."""
    by_step = {point["step"]: point["accuracy"] for point in curve}
    for point in curve:
        earlier = by_step.get(point["step"] - window)
        if earlier is not None and point["step"] >= window and point["accuracy"] - earlier < gain:
            return point["step"]
    return None


def cache_key(fingerprint: str, text_files: list[str], config: MlmHeadConfig) -> str:
    """The cache key of a head: the base's fingerprint, each text's sha256, and the settings that change the head."""
    from data_prep.common import file_sha256

    settings = {k: v for k, v in asdict(config).items() if k != "eval_every"}
    document = {"base": fingerprint, "texts": [file_sha256(Path(p)) for p in text_files], "config": settings}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def head_cache_dir(key: str) -> Path:
    from data_prep.registry import cache_root

    return cache_root() / "mlm-heads" / key


def pick_device(use_cpu: bool) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() and not use_cpu else "cpu")


def _fit(runner: FrozenBodyMlm, head: dict[str, nn.Parameter], states: torch.Tensor, targets: torch.Tensor,
         heldout: tuple[torch.Tensor, torch.Tensor], config: MlmHeadConfig) -> tuple[list[dict], int]:
    """AdamW on the head over cached positions; returns (the held-out curve, the steps taken)."""
    from tqdm.auto import tqdm
    from transformers import get_constant_schedule_with_warmup

    decay = [p for p in head.values() if p.ndim > 1]
    no_decay = [p for p in head.values() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate)
    schedule = get_constant_schedule_with_warmup(optimizer, max(1, config.max_steps // 20))
    order = torch.Generator().manual_seed(config.seed)
    permutation, cursor = torch.randperm(len(targets), generator=order), 0
    curve = [{"step": 0, **evaluate(runner, *heldout)}]
    runner.head.train()
    progress = tqdm(range(1, config.max_steps + 1), desc="mlm head", unit="step", dynamic_ncols=True)
    running, step = None, 0
    for step in progress:
        if cursor + config.tokens_per_step > len(permutation):
            permutation, cursor = torch.randperm(len(targets), generator=order), 0
        picked = permutation[cursor:cursor + config.tokens_per_step].to(targets.device)
        cursor += config.tokens_per_step
        loss, _ = runner.loss_and_hits(states[picked], targets[picked])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        running = value if running is None else 0.9 * running + 0.1 * value
        progress.set_postfix(loss=f"{running:.3f}")
        if config.eval_every and step % config.eval_every == 0 and step != config.max_steps:
            curve.append({"step": step, **evaluate(runner, *heldout)})
            logger.info("step %d: held-out masked-token accuracy %.2f%%", step, curve[-1]["accuracy"])
            if config.stop_at_plateau and plateau_step(curve, config.plateau_gain, config.plateau_window) is not None:
                break
    if curve[-1]["step"] != step:
        curve.append({"step": step, **evaluate(runner, *heldout)})
    return curve, step


def train_mlm_head(model_dir: str | Path, text_files: list[str], output_dir: str | Path,
                   config: MlmHeadConfig = MlmHeadConfig(), use_cpu: bool = False, use_cache: bool = True) -> dict:
    """Train the MLM head of ``model_dir`` on ``text_files`` (or take it from the cache); write the model to
    ``output_dir``; returns the results (also ``mlm_head.json`` there)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from adapter_core import atomic_write_json

    from .masking import MASKING_SEED, SeededMaskingCollator, example_seed
    from .train import from_model_dir, publish_directory
    from .vocab_trim import base_fingerprint

    if config.max_steps < 0 or config.batch_size < 1 or config.tokens_per_step < 1 or config.mask_passes < 1:
        raise ValueError("--max-steps must be >= 0, and --batch-size, --tokens-per-step and --mask-passes >= 1; got "
                         f"{config.max_steps}, {config.batch_size}, {config.tokens_per_step}, {config.mask_passes}")
    if config.eval_every and config.plateau_window % config.eval_every:
        raise ValueError(f"--plateau-window ({config.plateau_window}) must be a multiple of --eval-every "
                         f"({config.eval_every})")
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    lines = [line for path in text_files for line in read_text(path)[:config.max_lines or None]]
    train_lines, heldout_lines = split_lines(lines, config.heldout_lines, config.seed)
    torch.manual_seed(config.seed)
    device = pick_device(use_cpu)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model, loading = from_model_dir(AutoModelForMaskedLM, model_dir, tie_word_embeddings=True, output_loading_info=True)
    runner = FrozenBodyMlm(model)
    head = head_parameters(model)
    fresh = sorted(k for k in loading.get("missing_keys", []) if not k.startswith(model.base_model_prefix + "."))
    for param in model.parameters():
        param.requires_grad_(False)
    for param in head.values():
        param.requires_grad_(True)
    model.to(device)
    key = cache_key(base_fingerprint(model_dir), [str(p) for p in text_files], config)
    cached = head_cache_dir(key)

    def encode(texts: list[str], seed: int, epoch: int) -> list[dict]:
        ids = tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]
        return [{"input_ids": row, MASKING_SEED: example_seed(seed, epoch, i)} for i, row in enumerate(ids)]

    eval_collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=config.mask_probability,
                                          mask_replace_prob=1.0, random_replace_prob=0.0)
    heldout = cache_states(runner, encode(heldout_lines, config.seed + 1, 0), config.batch_size, eval_collator,
                           device, "held-out states")
    started = time.perf_counter()
    if use_cache and (cached / HEAD_FILE).is_file() and (cached / RESULTS).is_file():
        logger.info("MLM head from the cache: %s", cached)
        saved = load_file(str(cached / HEAD_FILE))
        if set(saved) != set(head) or any(saved[k].shape != head[k].shape for k in head):
            raise ModelDirError(f"{cached}: the cached head does not fit {model_dir}; delete it to retrain")
        with torch.no_grad():
            for name, param in head.items():
                param.copy_(saved[name])
        earlier = json.loads((cached / RESULTS).read_text(encoding="utf-8"))
        curve, steps, cache_seconds = earlier["curve"], earlier["steps"], earlier["cache_seconds"]
        cached_positions = earlier.get("cached_positions")
        train_seconds, from_cache = earlier["seconds"], str(cached)
        after = evaluate(runner, *heldout)
    else:
        collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=config.mask_probability,
                                         mask_replace_prob=0.8, random_replace_prob=0.1)
        passes = [cache_states(runner, encode(train_lines, config.seed, epoch), config.batch_size, collator, device,
                               f"cache pass {epoch + 1}/{config.mask_passes}") for epoch in range(config.mask_passes)]
        states, targets = torch.cat([p[0] for p in passes]), torch.cat([p[1] for p in passes])
        del passes
        if len(targets) == 0:
            raise DataError(f"{', '.join(map(str, text_files))}: no masked tokens (lines too short?)")
        cache_seconds = time.perf_counter() - started
        logger.info("cached %d masked positions in %.1f s", len(targets), cache_seconds)
        started = time.perf_counter()
        curve, steps = _fit(runner, head, states, targets, heldout, config)
        train_seconds, from_cache, after, cached_positions = time.perf_counter() - started, None, curve[-1], len(targets)
        del states, targets
    after = {k: after[k] for k in ("accuracy", "loss", "masked_tokens")}
    logger.info("after %d steps: masked-token accuracy %.2f%%, loss %.3f", steps, after["accuracy"], after["loss"])
    results = {"model": str(model_dir), "text_files": [str(p) for p in text_files], "train_lines": len(train_lines),
               "heldout_lines": len(heldout_lines), "before": {k: curve[0][k] for k in after}, "after": after,
               "steps": steps, "curve": curve,
               "plateau_step": plateau_step(curve, config.plateau_gain, config.plateau_window),
               "masked_tokens_seen": steps * config.tokens_per_step, "cached_positions": cached_positions,
               "seconds": round(train_seconds, 2),
               "cache_seconds": round(cache_seconds, 2), "seconds_per_step": round(train_seconds / max(1, steps), 4),
               "device": device.type, "from_cache": from_cache, "cache_key": key,
               "trainable_parameters": int(sum(p.numel() for p in head.values())),
               "trainable_tensors": sorted(head), "initialised_from_scratch": fresh, "config": asdict(config),
               "threads": torch.get_num_threads()}
    model.to("cpu")
    model.config.architectures = [type(model).__name__]
    if use_cache and from_cache is None:
        def fill_cache(tmp: Path) -> None:
            save_file({name: p.detach().contiguous() for name, p in head.items()}, str(tmp / HEAD_FILE))
            atomic_write_json(tmp / RESULTS, results)
        publish_directory(cached, fill_cache)

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
    parser.add_argument("--max-steps", type=int, default=defaults.max_steps, help="optimizer steps (at most)")
    parser.add_argument("--tokens-per-step", type=int, default=defaults.tokens_per_step,
                        help="masked positions per step, drawn from the cached encoder outputs")
    parser.add_argument("--mask-passes", type=int, default=defaults.mask_passes,
                        help="masked copies of the text whose encoder outputs are cached")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="lines per encoder forward")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="AdamW learning rate")
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="longest input in tokens")
    parser.add_argument("--max-lines", type=int, default=defaults.max_lines,
                        help="read the first N lines of each text file (0: all)")
    parser.add_argument("--heldout-lines", type=int, default=defaults.heldout_lines,
                        help="lines held out for the accuracy (at most a fifth of the text)")
    parser.add_argument("--eval-every", type=int, default=defaults.eval_every, help="held-out accuracy every N steps")
    parser.add_argument("--plateau-gain", type=float, default=defaults.plateau_gain,
                        help="plateau: fewer accuracy points than this gained over --plateau-window steps")
    parser.add_argument("--plateau-window", type=int, default=defaults.plateau_window, help="see --plateau-gain")
    parser.add_argument("--stop-at-plateau", action="store_true", help="end training at the plateau")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.add_argument("--cpu", action="store_true", help="run on CPU even with a GPU")
    parser.add_argument("--no-cache", action="store_true", help="train even if the head cache holds this head")


def run(args) -> None:
    config = MlmHeadConfig(max_steps=args.max_steps, tokens_per_step=args.tokens_per_step, mask_passes=args.mask_passes,
                           batch_size=args.batch_size, learning_rate=args.learning_rate, max_length=args.max_length,
                           max_lines=args.max_lines, heldout_lines=args.heldout_lines, eval_every=args.eval_every, plateau_gain=args.plateau_gain,
                           plateau_window=args.plateau_window, stop_at_plateau=args.stop_at_plateau, seed=args.seed)
    results = train_mlm_head(args.model, args.text, args.output_dir, config, use_cpu=args.cpu, use_cache=not args.no_cache)
    source = f"from the cache {results['from_cache']}" if results["from_cache"] else f"{results['steps']} steps"
    print(f"MLM head ({source}): masked-token accuracy {results['before']['accuracy']:.2f}% -> "
          f"{results['after']['accuracy']:.2f}% on {results['after']['masked_tokens']} held-out tokens, plateau at "
          f"step {results['plateau_step']} -> {Path(args.output_dir) / RESULTS}")
