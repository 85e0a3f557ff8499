"""Training MAD-X adapters with the transformers ``Trainer`` (accelerate underneath).

- ``train_language_adapter``: masked LM on monolingual text (15% masking,
  80/10/10); only the language adapter and its invertible adapter train, the
  MLM head stays frozen (AdapterHub's ``train_adapter`` leaves it trainable).
- ``train_task_adapter``: the source language adapter is active and frozen,
  the task adapter is stacked above it (``Stack(lang, task)``), and the
  prediction head trains with the task adapter.

The Trainer writes checkpoints under ``<output>/checkpoints``; re-running the
same command resumes from the last one (e.g. after SIGKILL) and ends with the
same adapter weights as an uninterrupted run (on CPU).  The finished adapter
directory is built in a temporary directory and renamed into place.

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

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save as save_safetensors_bytes
from transformers import (AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                          TrainerCallback, TrainingArguments)

from adapter_core import AdapterConfig, Stack, atomic_write_bytes, atomic_write_json
from adapter_core.io import USUAL_DIRECTORY_MODE

from .adapter_io import load_madx_adapter, save_madx_adapter
from .attach import MadxHost, masked_lm_loss, mlm_logits_at
from .data import DataError, ModelDirError, read_text
from .drop import AdapterDrop, AdapterDropConfig
from .tasks import LABELLED_HEAD_TASKS, TASKS

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


# -- deterministic MLM masking ---------------------------------------------------------

#: Feature key that carries an example's masking seed from the dataset to the collator.
MASKING_SEED = "masking_seed"


def example_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on the run's seed, the epoch and the example's index."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class MaskingSeedDataset(ListDataset):
    """Features plus each example's masking seed for the current epoch (set by ``EpochToDataset``)."""

    def __init__(self, features: list[dict], seed: int):
        super().__init__(features)
        self.seed = seed
        self.epoch = 0

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


# -- Trainer plumbing ------------------------------------------------------------------


class MaskedPositionsTrainer(Trainer):
    """The Trainer, with the MLM vocabulary projection computed at the masked positions only.

    AdapterHub (and transformers' MLM loss) project every position onto the
    vocabulary, although the loss reads only the masked 15%; at XLM-R sizes
    with a frozen encoder that projection is a large share of a step.  Build
    it with ``compute_loss_func=masked_lm_loss``; the loss equals the default one.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with mlm_logits_at(self.accelerator.unwrap_model(model), inputs["labels"] != -100):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)


def _arguments(options: TrainOptions) -> TrainingArguments:
    arguments = dict(
        output_dir=str(Path(options.output_dir) / "checkpoints"), learning_rate=options.learning_rate,
        per_device_train_batch_size=options.batch_size, num_train_epochs=options.epochs, max_steps=options.max_steps,
        save_strategy="steps", save_steps=options.save_steps, save_total_limit=2, logging_steps=max(1, min(50, options.save_steps)),
        eval_strategy="no", seed=options.seed, data_seed=options.seed, use_cpu=options.use_cpu, report_to=[],
        remove_unused_columns=False, dataloader_num_workers=0,
        # Under torchrun, DDP looks for trainable parameters a step did not use (AdapterDrop-style skips,
        # a head one rank's batch never reaches) instead of waiting for their gradients forever.
        ddp_find_unused_parameters=True)
    return TrainingArguments(**{**arguments, **options.extra})


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """The newest ``checkpoint-N`` whose save finished: transformers writes ``trainer_state.json`` last (after
    the weights, optimizer and RNG states), so a run killed while saving leaves a folder without it (or with
    a torn one), and resuming from that folder fails; the one before it is used instead."""
    if not checkpoints.is_dir():
        return None
    found = []
    for folder in checkpoints.glob("checkpoint-*"):
        state = folder / "trainer_state.json"
        if not folder.name.split("-")[-1].isdigit() or not state.is_file():
            continue
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        found.append((int(folder.name.split("-")[-1]), str(folder)))
    return max(found)[1] if found else None


def _train(trainer: Trainer, options: TrainOptions) -> None:
    last = last_complete_checkpoint(Path(options.output_dir) / "checkpoints")
    if last:
        logger.info("resuming from %s", last)
    trainer.train(resume_from_checkpoint=last)


def world_size() -> int:
    """Processes taking part (torchrun sets WORLD_SIZE)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def is_main_process() -> bool:
    """True on the process that writes the finished adapter (rank 0 under torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


def _check_batch(dataset_size: int, options: TrainOptions, what: str) -> None:
    needed = options.batch_size * world_size()
    if dataset_size == 0:
        raise DataError(f"{what}: no training examples")
    if dataset_size < needed:
        raise DataError(f"{what}: {dataset_size} training examples, fewer than one batch "
                        f"({options.batch_size} per process x {world_size()} processes); add data or lower --batch-size")


def publish_directory(directory: Path, build) -> Path:
    """Build a directory in a temporary sibling with ``build(tmp)``, then rename it into place.

    Readers see the old directory or the complete new one; on failure the
    temporary directory is removed and nothing is left behind.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    for stale in directory.parent.glob(f".{directory.name}.*.tmp"):  # left by a run killed while publishing
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        tmp.chmod(USUAL_DIRECTORY_MODE)  # mkdtemp makes 0700 folders; the published one gets the usual mode
        build(tmp)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    return directory


def from_model_dir(loader, model_dir: str | Path, **kwargs):
    """``loader.from_pretrained(model_dir)``, with one clear error for a missing, truncated or corrupt directory."""
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirError(f"{model_dir}: model directory not found (models load from a local directory, no downloads)")
    try:
        return loader.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        text = str(err).strip().splitlines()
        raise ModelDirError(f"{model_dir}: cannot load with {getattr(loader, '__name__', loader)}.from_pretrained: "
                            f"{type(err).__name__}: {text[0] if text else ''}") from None


def check_tokenizer_fits(tokenizer, model, model_dir: str | Path) -> None:
    """A ModelDirError when the tokenizer can emit ids the model has no embedding row for.

    E.g. the full XLM-R tokenizer beside a vocabulary-trimmed model (``xling
    trim-vocab`` writes the matching one): without this check the first batch
    fails deep inside the embedding lookup.
    """
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ModelDirError(f"{model_dir}: the tokenizer does not match the model: {len(tokenizer)} tokens, but the "
                            f"model's input embeddings have {rows} rows (a trimmed model needs the tokenizer that "
                            f"'xling trim-vocab' wrote with it)")


# -- language and task adapters -------------------------------------------------------


def attach_adapter_drop(host: MadxHost, drop: AdapterDropConfig | None) -> AdapterDrop | None:
    """AdapterDrop (Rücklé et al. 2021) for training, leaving at least one layer with adapters; None without a config.

    Robust mode draws n from its own seeded generator, which checkpoints do
    not carry: a resumed robust run draws other n than an uninterrupted one.
    """
    if drop is None:
        return None
    most = drop.num_dropped if drop.mode == "specialised" else drop.max_dropped
    if most >= len(host.layers):
        raise ValueError(f"AdapterDrop: cannot drop the adapters of {most} layers in training; "
                         f"the model has {len(host.layers)}, at least one must keep its adapters")
    return AdapterDrop(host, drop)


def _drop_metadata(drop: AdapterDropConfig | None) -> dict:
    return {"adapter_drop": dataclasses.asdict(drop)} if drop is not None else {}


def train_language_adapter(model_dir: str, language: str, text_files: list[str], options: TrainOptions,
                           skip_last_layer: bool = False, invertible: bool = True,
                           adapter_config: AdapterConfig | None = None, drop: AdapterDropConfig | None = None) -> Path:
    """MLM-train a MAD-X language adapter (rf 2) with a NICE invertible adapter; returns the adapter dir.

    ``adapter_config`` replaces the rf-2 bottleneck (e.g. Compacter++);
    ``drop`` trains with AdapterDrop and is recorded in the adapter's metadata.
    """
    lines = [line for path in text_files for line in read_text(path)]
    torch.manual_seed(options.seed)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = from_model_dir(AutoModelForMaskedLM, model_dir)
    check_tokenizer_fits(tokenizer, model, model_dir)
    host = MadxHost(model)
    host.add_adapter(language, role="language", config=adapter_config, invertible=invertible,
                     skip_last_layer=skip_last_layer)
    host.set_active(language)
    dropper = attach_adapter_drop(host, drop)
    trainable = host.train_only([language], train_head=False)
    logger.info("language adapter %s: %d trainable tensors", language, len(trainable))
    features = [{"input_ids": ids} for ids in tokenizer(lines, truncation=True, max_length=options.max_length)["input_ids"]]
    _check_batch(len(features), options, ", ".join(map(str, text_files)))
    dataset = MaskingSeedDataset(features, options.seed)
    collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=0.15, mask_replace_prob=0.8,
                                     random_replace_prob=0.1)
    trainer = MaskedPositionsTrainer(model=model, args=_arguments(options), train_dataset=dataset,
                                     data_collator=collator, processing_class=tokenizer,
                                     callbacks=[EpochToDataset(dataset)], compute_loss_func=masked_lm_loss)
    _train(trainer, options)
    if dropper is not None:
        dropper.remove()
    out = Path(options.output_dir) / "adapter"
    if is_main_process():
        publish_directory(out, lambda tmp: save_madx_adapter(
            host, language, tmp, metadata={"seed": options.seed, "model_dir": str(model_dir), **_drop_metadata(drop)}))
    trainer.accelerator.wait_for_everyone()  # under torchrun, every rank returns once the adapter exists
    return out


def build_task_model(model_dir: str, task: str, labels: list[str]):
    """The task's AutoModel with its head, loaded from a local base directory."""
    module = TASKS[task]
    kwargs = {}
    if task in LABELLED_HEAD_TASKS:
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {l: i for i, l in enumerate(labels)}}
    return from_model_dir(module.MODEL_CLASS, model_dir, **kwargs)


@dataclass
class TaskSetup:
    """What every task training starts from: the data, its labels, the tokenizer and the task model."""

    # The task module (xling.tasks.ner / qa / commonsense).
    module: object
    # The training examples as the task's reader returns them.
    examples: list
    # The label list (NER tags; answer positions or choices for the others).
    labels: list
    # The tokenizer of the base model directory.
    tokenizer: object
    # The base model with the task's prediction head.
    model: torch.nn.Module


def load_task_setup(model_dir: str, task: str, train_file: str, seed: int, labels_file: str | None = None) -> TaskSetup:
    """Check the task, seed torch, read the training data and build the task model from ``model_dir``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    torch.manual_seed(seed)
    module = TASKS[task]
    examples = module.read(train_file, labels_file)
    labels = module.label_list(examples)
    tokenizer, model = from_model_dir(AutoTokenizer, model_dir), build_task_model(model_dir, task, labels)
    check_tokenizer_fits(tokenizer, model, model_dir)
    return TaskSetup(module=module, examples=examples, labels=labels, tokenizer=tokenizer, model=model)


def train_task_adapter(model_dir: str, task: str, language_adapter: str, train_file: str, options: TrainOptions,
                       task_name: str | None = None, labels_file: str | None = None,
                       skip_last_layer: bool = False, force: bool = False, adapter_config: AdapterConfig | None = None,
                       drop: AdapterDropConfig | None = None) -> Path:
    """Train a task adapter (rf 16) stacked above a frozen language adapter, with its prediction head.

    ``adapter_config`` replaces the rf-16 bottleneck (e.g. Compacter++);
    ``drop`` trains with AdapterDrop and is recorded in ``task.json``, so that
    ``xling eval`` drops the same layers (specialised mode) by default.
    """
    setup = load_task_setup(model_dir, task, train_file, options.seed, labels_file)
    module, examples, labels, tokenizer, model = (setup.module, setup.examples, setup.labels, setup.tokenizer,
                                                  setup.model)
    host = MadxHost(model)
    lang = load_madx_adapter(host, language_adapter, force=force)
    name = task_name or task
    host.add_adapter(name, role="task", config=adapter_config, skip_last_layer=skip_last_layer)
    host.set_active(Stack(lang, name))
    host.train_only([name], train_head=True)
    dropper = attach_adapter_drop(host, drop)
    features = module.build_features(examples, tokenizer, labels, options.max_length)
    _check_batch(len(features), options, train_file)
    trainer = Trainer(model=model, args=_arguments(options), train_dataset=ListDataset(features),
                      data_collator=module.collator(tokenizer), processing_class=tokenizer)
    _train(trainer, options)
    if dropper is not None:
        dropper.remove()
    out = Path(options.output_dir) / "adapter"

    def build(tmp: Path) -> None:
        save_madx_adapter(host, name, tmp, metadata={"task": task, "seed": options.seed, "source_language": lang,
                                                     **_drop_metadata(drop)})
        head_names = set(host.head_parameter_names())
        head = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k in head_names}
        atomic_write_bytes(tmp / HEAD_WEIGHTS, save_safetensors_bytes(head, metadata={"format": "pt"}))
        atomic_write_json(tmp / TASK_INFO, {"task": task, "labels": labels, "adapter_name": name, "seed": options.seed,
                                            "source_language": lang, "train_file": str(train_file),
                                            **_drop_metadata(drop)})

    if is_main_process():
        publish_directory(out, build)
    trainer.accelerator.wait_for_everyone()  # under torchrun, every rank returns once the adapter exists
    return out
