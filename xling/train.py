"""Training MAD-X adapters with the transformers ``Trainer`` (accelerate underneath).

- ``train_language_adapter``: masked LM on monolingual text (15% masking,
  80/10/10); only the language adapter and its invertible adapter train, the
  MLM head stays frozen (AdapterHub's ``train_adapter`` leaves it trainable).
- ``train_task_adapter``: the source language adapter is active and frozen,
  the task adapter is stacked above it (``Stack(lang, task)``), and the
  prediction head trains with the task adapter.

The Trainer writes checkpoints under ``<output>/checkpoints``; re-running the
same command resumes from the last one (e.g. after SIGKILL).  The finished
adapter is written atomically in adapter_core's safetensors format.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save as save_safetensors_bytes
from transformers import (AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                          TrainingArguments)
from transformers.trainer_utils import get_last_checkpoint

from adapter_core import Stack, atomic_write_bytes, atomic_write_json

from .adapter_io import load_madx_adapter, save_madx_adapter
from .attach import MadxHost
from .data import DataError, read_text
from .tasks import TASKS

logger = logging.getLogger(__name__)
HEAD_WEIGHTS = "head.safetensors"
TASK_INFO = "task.json"


@dataclass
class TrainOptions:
    """Options shared by language and task adapter training."""

    # Where the adapter, and the Trainer's checkpoints (``checkpoints/``), go.
    output_dir: str
    # Learning rate (MAD-X: 1e-4 for both adapter kinds).
    learning_rate: float = 1e-4
    # Examples per device and step.
    batch_size: int = 16
    # Number of epochs; ignored when max_steps > 0.
    epochs: float = 1.0
    # Stop after this many optimizer steps (-1: use epochs).
    max_steps: int = -1
    # Save a checkpoint every this many steps.
    save_steps: int = 500
    # Random seed (data order, masking, initialisation).
    seed: int = 42
    # Longest input in tokens.
    max_length: int = 256
    # Run on CPU even when a GPU is present.
    use_cpu: bool = False
    # Extra TrainingArguments, e.g. {"warmup_ratio": 0.1}.
    extra: dict = field(default_factory=dict)


class ListDataset(torch.utils.data.Dataset):
    """A list of feature dicts as a map-style Dataset."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return self.features[index]


def _arguments(options: TrainOptions) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(Path(options.output_dir) / "checkpoints"), learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size, num_train_epochs=options.epochs, max_steps=options.max_steps,
        save_strategy="steps", save_steps=options.save_steps, save_total_limit=2, logging_steps=max(1, min(50, options.save_steps)),
        eval_strategy="no", seed=options.seed, data_seed=options.seed, use_cpu=options.use_cpu, report_to=[],
        remove_unused_columns=False, dataloader_num_workers=0, **options.extra)


def _train(trainer: Trainer, options: TrainOptions) -> None:
    last = get_last_checkpoint(str(Path(options.output_dir) / "checkpoints")) if (Path(options.output_dir) / "checkpoints").is_dir() else None
    if last:
        logger.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)


def _check_batch(dataset_size: int, options: TrainOptions, what: str) -> None:
    if dataset_size == 0:
        raise DataError(f"{what}: no training examples")


def train_language_adapter(model_dir: str, language: str, text_files: list[str], options: TrainOptions,
                           skip_last_layer: bool = False, invertible: bool = True) -> Path:
    """MLM-train a MAD-X language adapter (rf 2) with a NICE invertible adapter; returns the adapter dir."""
    torch.manual_seed(options.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForMaskedLM.from_pretrained(model_dir)
    host = MadxHost(model)
    host.add_adapter(language, role="language", invertible=invertible, skip_last_layer=skip_last_layer)
    host.set_active(language)
    trainable = host.train_only([language], train_head=False)
    logger.info("language adapter %s: %d trainable tensors", language, len(trainable))
    lines = [line for path in text_files for line in read_text(path)]
    features = [{"input_ids": ids} for ids in tokenizer(lines, truncation=True, max_length=options.max_length)["input_ids"]]
    _check_batch(len(features), options, ", ".join(text_files))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=0.15, mask_replace_prob=0.8,
                                               random_replace_prob=0.1)
    trainer = Trainer(model=model, args=_arguments(options), train_dataset=ListDataset(features),
                      data_collator=collator, processing_class=tokenizer)
    _train(trainer, options)
    out = Path(options.output_dir) / "adapter"
    save_madx_adapter(host, language, out, metadata={"seed": options.seed, "model_dir": str(model_dir)})
    return out


def build_task_model(model_dir: str, task: str, labels: list[str]):
    """The task's AutoModel with its head, loaded from a local base directory."""
    module = TASKS[task]
    kwargs = {}
    if task == "ner":
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {l: i for i, l in enumerate(labels)}}
    return module.MODEL_CLASS.from_pretrained(model_dir, **kwargs)


def train_task_adapter(model_dir: str, task: str, language_adapter: str, train_file: str, options: TrainOptions,
                       task_name: str | None = None, labels_file: str | None = None,
                       skip_last_layer: bool = False, force: bool = False) -> Path:
    """Train a task adapter (rf 16) stacked above a frozen language adapter, with its prediction head."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    torch.manual_seed(options.seed)
    module = TASKS[task]
    examples = module.read(train_file, labels_file)
    labels = module.label_list(examples)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = build_task_model(model_dir, task, labels)
    host = MadxHost(model)
    lang = load_madx_adapter(host, language_adapter, force=force)
    name = task_name or task
    host.add_adapter(name, role="task", skip_last_layer=skip_last_layer)
    host.set_active(Stack(lang, name))
    host.train_only([name], train_head=True)
    features = module.build_features(examples, tokenizer, labels, options.max_length)
    _check_batch(len(features), options, train_file)
    trainer = Trainer(model=model, args=_arguments(options), train_dataset=ListDataset(features),
                      data_collator=module.collator(tokenizer), processing_class=tokenizer)
    _train(trainer, options)
    out = Path(options.output_dir) / "adapter"
    save_madx_adapter(host, name, out, metadata={"task": task, "seed": options.seed, "source_language": lang})
    head = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k in set(host.head_parameter_names())}
    atomic_write_bytes(out / HEAD_WEIGHTS, save_safetensors_bytes(head, metadata={"format": "pt"}))
    atomic_write_json(out / TASK_INFO, {"task": task, "labels": labels, "adapter_name": name, "seed": options.seed,
                                        "source_language": lang, "train_file": str(train_file)})
    return out
