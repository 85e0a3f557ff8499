"""Masked-LM training pieces: masking seeded per example, and the Trainer that projects masked positions only.

Why MLM masking has its own seeds: accelerate's ``DataLoaderShard`` collates
one batch ahead, so with masking drawn from the global torch RNG the draws
for batch k+1 interleave with the dropout draws of batch k, and the RNG state
the Trainer saves at step N has already paid for batch N+1's masks.  On
resume the Trainer restores that state only *after* fetching the first
batches (``rng_to_sync`` in ``Trainer._run_epoch``), so those batches were
masked from a fresh post-seed RNG and every later draw was shifted.
``SeededMaskingCollator`` masks each example with a generator seeded by
(seed, epoch, example index), which no checkpoint needs to carry; the global
RNG then serves only dropout, and the Trainer's restore point is exact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback

from .attach import mlm_logits_at
from .trainable_checkpoints import TrainableCheckpoints

#: Feature key that carries an example's masking seed from the dataset to the collator.
MASKING_SEED = "masking_seed"


def example_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on the run's seed, the epoch and the example's index."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class MaskingSeedDataset(torch.utils.data.Dataset):
    """Features plus each example's masking seed for the current epoch (set by ``EpochToDataset``)."""

    def __init__(self, features: list[dict], seed: int):
        self.features = features
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.features)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        return {**self.features[index], MASKING_SEED: example_seed(self.seed, self.epoch, index)}


class EpochToDataset(TrainerCallback):
    """Tells the dataset which epoch begins, also when resuming mid-epoch.

    accelerate forwards ``set_epoch`` to the dataset only when no (wrapped)
    sampler takes it, which is not the case under ``skip_first_batches`` or
    in distributed runs, so the Trainer's own epoch counter is used.
    """

    def __init__(self, dataset: MaskingSeedDataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        # state.epoch is the integer epoch at a fresh start, epoch + k/n when resumed mid-epoch
        self.dataset.set_epoch(int((state.epoch or 0.0) + 1e-6))


@dataclass
class SeededMaskingCollator(DataCollatorForLanguageModeling):
    """BERT's MLM masking (Devlin et al. 2019; 15%, 80/10/10, as MAD-X trains language adapters), per example.

    Each example is masked by the parent's ``torch_mask_tokens`` with a
    generator seeded by its ``MASKING_SEED``, before padding, so an example's
    masks do not depend on the batch it lands in, the number of processes, or
    where training was resumed.
    """

    def torch_call(self, examples: list[dict]) -> dict:
        inputs, labels = [], []
        try:
            for example in examples:
                self.generator = torch.Generator().manual_seed(int(example[MASKING_SEED]))
                masked, target = self.torch_mask_tokens(torch.tensor([example["input_ids"]], dtype=torch.long))
                inputs.append(masked[0])
                labels.append(target[0])
        finally:
            self.generator = None
        length = max(len(row) for row in inputs)
        batch = {"input_ids": torch.full((len(inputs), length), self.tokenizer.pad_token_id, dtype=torch.long),
                 "attention_mask": torch.zeros((len(inputs), length), dtype=torch.long),
                 "labels": torch.full((len(inputs), length), -100, dtype=torch.long)}
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for i, (row, target) in enumerate(zip(inputs, labels)):
            span = slice(length - len(row), length) if left else slice(0, len(row))
            batch["input_ids"][i, span], batch["labels"][i, span], batch["attention_mask"][i, span] = row, target, 1
        return batch


class MaskedPositionsTrainer(TrainableCheckpoints, Trainer):
    """The Trainer, with the MLM vocabulary projection computed at the masked positions only (and checkpoints
    of the trainable tensors only, ``TrainableCheckpoints``).

    AdapterHub (and transformers' MLM loss) project every position onto the
    vocabulary, although the loss reads only the masked 15%; at XLM-R sizes
    with a frozen encoder that projection is a large share of a step.  Build
    it with ``compute_loss_func=masked_lm_loss``; the loss equals the default one.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with mlm_logits_at(self.accelerator.unwrap_model(model), inputs["labels"] != -100):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
