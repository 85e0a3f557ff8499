"""Training pair or language adapters on a transformers translation model with ``Seq2SeqTrainer``.

Only the adapters being trained have ``requires_grad``; everything else,
the base included, is left bitwise unchanged (tested).  A run trains one
direction (the config's languages), or several at once when the examples
carry ``src_lang`` and ``tgt_lang``: batches then mix directions and each row
is routed by its own (the batch key ``translation_directions``, as fairseq's
``translation_multi_simple_epoch`` batches carry language ids).  The setups
are those ``xling.seq2seq.route_setups`` gives the host's ``route_by`` mode
(Bapna & Firat: the pair adapter on both sides; Philip et al.: the source
language's adapter in the encoder and the target language's in the decoder,
trained jointly over directions; ``lang+pair``: the pair adapter stacked on
frozen language adapters).  AdapterDrop's draw for each update follows the
optimizer step (``adapter_core.drop``), so a resumed run draws the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

from adapter_core import AdapterConfig, setup_names

from .seq2seq import BATCH_KEY, Seq2SeqAdapterHost, route_setups

logger = logging.getLogger(__name__)


@dataclass
class TranslationTrainingConfig:
    """One direction's adapter training run."""

    # Where the Trainer writes its state.
    output_dir: str
    # Source and target language codes as the adapters are named (``de``, ``en``; pair ``de-en``); unused
    # when the examples carry their own ``src_lang`` and ``tgt_lang``.
    src_lang: str = ""
    tgt_lang: str = ""
    # Optimizer updates.
    max_steps: int = 200
    # Adam learning rate (Bapna & Firat fine-tune adapters with the base's schedule; 1e-3 suits small adapters).
    learning_rate: float = 1e-3
    # Sentence pairs per update.
    batch_size: int = 16
    # Random seed (data order and adapter init).
    seed: int = 1
    # Force CPU even where a GPU is visible.
    cpu: bool = False


class PadCollator:
    """Pads ``input_ids`` with the model's pad id and ``labels`` with -100 (the loss ignores them); passes each
    row's (src_lang, tgt_lang) on as ``translation_directions`` where the examples have them."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        def pad(key, value):
            rows = [list(f[key]) for f in features]
            width = max(len(r) for r in rows)
            return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)
        input_ids = pad("input_ids", self.pad_id)
        batch = {"input_ids": input_ids, "attention_mask": (input_ids != self.pad_id).long(), "labels": pad("labels", -100)}
        if "src_lang" in features[0]:
            batch[BATCH_KEY] = [(f["src_lang"], f["tgt_lang"]) for f in features]
        return batch


class _StepCallback(TrainerCallback):
    """Tells the host the optimizer step, for AdapterDrop's per-update draw."""

    def __init__(self, host: Seq2SeqAdapterHost):
        self.host = host

    def on_step_begin(self, args, state, control, **kwargs):
        self.host.step = state.global_step


def train_direction(host: Seq2SeqAdapterHost, dataset: Sequence[dict], config: TranslationTrainingConfig,
                    adapter_config: AdapterConfig | None = None, train: Sequence[str] | None = None) -> list[str]:
    """Train the adapters of the run's directions on ``dataset`` (dicts of ``input_ids`` and ``labels``, and
    optionally ``src_lang`` and ``tgt_lang`` per example).

    Adapters the directions' setups name but the host lacks are added (with ``adapter_config``); ``train``
    (default: those added now, or every named one if all exist) are the ones that learn.  Returns their names.
    """
    dataset = list(dataset)
    per_row = bool(dataset) and "src_lang" in dataset[0]
    if not per_row and not (config.src_lang and config.tgt_lang):
        raise ValueError("give src_lang and tgt_lang in the config, or in every example")
    directions = sorted({(d["src_lang"], d["tgt_lang"]) for d in dataset}) if per_row else [(config.src_lang, config.tgt_lang)]
    sides: dict[str, list[str]] = {}  # adapter name -> the sides whose setups name it
    for src, tgt in directions:
        for side, setup in zip(("encoder", "decoder"), route_setups(host.route_by, src, tgt)):
            for name in setup_names(setup):
                sides.setdefault(name, [])
                if side not in sides[name]:
                    sides[name].append(side)
    torch.manual_seed(config.seed)
    added = []
    for name, on in sides.items():
        if name not in host.adapters:
            host.add_adapter(name, adapter_config, sides=on)
            added.append(name)
    train = list(train) if train is not None else (added or list(sides))
    host.train_only(train)
    host.set_active(*(route_setups(host.route_by, *directions[0]) if not per_row else (None, None)))
    args = Seq2SeqTrainingArguments(
        output_dir=config.output_dir, max_steps=config.max_steps, learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size, seed=config.seed, data_seed=config.seed,
        use_cpu=config.cpu, report_to=[], save_strategy="no", logging_steps=max(1, config.max_steps // 10),
        remove_unused_columns=False, dataloader_pin_memory=False, disable_tqdm=False)
    trainer = Seq2SeqTrainer(model=host.model, args=args, train_dataset=dataset,
                             data_collator=PadCollator(int(host.model.config.pad_token_id)),
                             callbacks=[_StepCallback(host)])
    trainer.train()
    host.model.eval()
    logger.info("trained %s for %d updates on %d direction(s)", ", ".join(train), config.max_steps, len(directions))
    return train
