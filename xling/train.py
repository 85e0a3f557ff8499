"""Training with the transformers ``Trainer`` (accelerate underneath): one pipeline for every xling training.

- ``train_language_adapter``: masked LM on monolingual text (15% masking,
  80/10/10); only the language adapter and its invertible adapter train, the
  MLM head stays frozen (AdapterHub's ``train_adapter`` leaves it trainable).
- ``train_task_adapter``: the source language adapter is active and frozen,
  the task adapter is stacked above it (``Stack(lang, task)``), and the
  prediction head trains with the task adapter (and, as Houlsby et al. 2019
  do, the encoder's LayerNorms with ``train_layer_norms``).
- ``train_full_model``: every weight of the task model, no adapters (the baseline).
- ``train_with_head``: the training of a task model with its prediction head
  that task adapters, AdapterFusion (``xling.fusion``) and full fine-tuning share.

Every training ends in ``fit_and_publish``.  The Trainer writes checkpoints
under ``<output>/checkpoints``; re-running the same command resumes from the
last one (e.g. after SIGKILL) and ends with the same weights as an
uninterrupted run (on CPU; MLM masking is seeded per example for that, see
``xling.masking``).  A checkpoint holds the trainable tensors, the optimizer and
the RNG states, not the frozen model (``xling.trainable_checkpoints``); the
settings that define the run are recorded beside the checkpoints
(``run_settings.json``), and a rerun with other settings is refused in one line
instead of mixing two runs.  Then the main process alone (rank 0 under torchrun)
builds the finished directory in a temporary sibling and renames it into place
(``adapter_core.publish_directory``, the one atomic publish of both hosts).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from transformers import AutoModelForMaskedLM, AutoTokenizer, Trainer, TrainingArguments

from adapter_core import AdapterConfig, Stack, atomic_write_json, save_side_tensors
from adapter_core.io import publish_directory  # noqa: F401  (the one atomic publish; importable here, as before)

from .adapter_io import load_madx_adapter, save_layer_norms, save_madx_adapter
from .attention_sites import eject_prefix_tuning
from .attach import TransformersHost, masked_lm_loss
from .data import DataError, ModelDirError, read_text
from .drop import AdapterDrop, AdapterDropConfig, AdapterDropSteps
from .masking import MASKING_SEED  # noqa: F401  (not used here; importable beside the collator, as before)
from .masking import EpochToDataset, MaskedPositionsTrainer, MaskingSeedDataset, SeededMaskingCollator
from .tasks import LABELLED_HEAD_TASKS, TASKS
from .trainable_checkpoints import TrainableCheckpoints
from .resume import (RESUME_FREE_FLAGS, RUN_SETTINGS, ResumeMismatchError, check_resume_settings,  # noqa: F401
                     is_main_process, last_complete_checkpoint, run_settings, world_size)

logger = logging.getLogger(__name__)
HEAD_WEIGHTS = "head.safetensors"
TASK_INFO = "task.json"


@dataclass
class TrainOptions:
    """Options of every xling training (language and task adapters, fusion, full fine-tuning)."""

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
    # The command's other settings that define the run (its flags: model, data, language, adapter kind ...),
    # recorded beside the checkpoints and compared on resume with the options above (``check_resume_settings``).
    run_settings: dict = field(default_factory=dict)

    @classmethod
    def from_args(cls, args) -> "TrainOptions":
        """The options of the training flags every xling training command has (``--output-dir``,
        ``--learning-rate``, ``--batch-size``, ``--epochs``, ``--max-steps``, ``--save-steps``, ``--seed``,
        ``--max-length``, ``--cpu``), and the command's other flags as ``run_settings``."""
        options = {name: getattr(args, flag) for name, flag in _OPTION_FLAGS.items()}
        settings = {key: value for key, value in vars(args).items()
                    if key not in RESUME_FREE_FLAGS and key not in _OPTION_FLAGS.values() and not key.startswith("_")}
        return cls(**options, run_settings=settings)


#: TrainOptions field -> the argparse destination of its flag.
_OPTION_FLAGS = {"output_dir": "output_dir", "learning_rate": "learning_rate", "batch_size": "batch_size",
                 "epochs": "epochs", "max_steps": "max_steps", "save_steps": "save_steps", "seed": "seed",
                 "max_length": "max_length", "use_cpu": "cpu"}
@dataclass
class CurveOptions:
    """Held-out MLM loss during a language adapter's training (``xling.lang_mlm_eval.MlmCurve``)."""

    # Held-out text of the adapter's language, one line each (never in the training text).
    heldout_text: str
    # Score it every this many optimizer steps.
    eval_steps: int = 250
    # Stop once the loss fell by less than this (nats) over plateau_window steps (0: never stop early).
    plateau_delta: float = 0.0
    # Steps over which the fall is measured (a multiple of eval_steps).
    plateau_window: int = 1000


class ListDataset(torch.utils.data.Dataset):
    """A list of feature dicts as a map-style Dataset."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> dict:
        return self.features[index]


# -- Trainer plumbing ------------------------------------------------------------------


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


def _check_batch(dataset_size: int, options: TrainOptions, what: str) -> None:
    needed = options.batch_size * world_size()
    if dataset_size == 0:
        raise DataError(f"{what}: no training examples")
    if dataset_size < needed:
        raise DataError(f"{what}: {dataset_size} training examples, fewer than one batch "
                        f"({options.batch_size} per process x {world_size()} processes); add data or lower --batch-size")


def fit_and_publish(trainer: Trainer, options: TrainOptions, out: Path, build: Callable[[Path], None],
                    dropper: AdapterDrop | None = None) -> Path:
    """Train, resuming from the last complete checkpoint under ``OUT/checkpoints``, then publish ``out``.

    AdapterDrop (``dropper``) follows the Trainer's step (``AdapterDropSteps``),
    so a resumed run drops what the uninterrupted one did; its hooks come off
    before anything is saved.  Only the main process (rank 0 under torchrun)
    writes: ``build(tmp)`` fills a temporary sibling that is renamed to ``out``
    (``adapter_core.publish_directory``), so readers never see half a
    directory; every rank returns once it exists.
    """
    last = last_complete_checkpoint(Path(options.output_dir) / "checkpoints")
    check_resume_settings(options, last, record=True)
    if last:
        logger.info("resuming from %s", last)
    if dropper is not None:
        trainer.add_callback(AdapterDropSteps(dropper))
    trainer.train(resume_from_checkpoint=last)
    if dropper is not None:
        dropper.remove()
    try:
        if is_main_process():
            publish_directory(out, build)
    finally:  # a failed publish still reaches the barrier: the other ranks return instead of waiting forever
        trainer.accelerator.wait_for_everyone()
    return out


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


def position_limit(model) -> int | None:
    """The longest input the model's position embeddings take: ``max_position_embeddings``, less RoBERTa's
    offset (its positions start after the padding index: 514 rows, 512 tokens); None when it has no such limit."""
    embeddings = getattr(getattr(model, "base_model", model), "embeddings", None)
    table = getattr(embeddings, "position_embeddings", None)
    if table is None or not hasattr(table, "num_embeddings"):
        return None
    padding = getattr(embeddings, "padding_idx", None)
    return table.num_embeddings - (padding + 1 if padding is not None else 0)


def fitted_max_length(model, max_length: int) -> int:
    """``max_length`` cut to what the model's positions take, with a warning; beyond it, the first long input
    ended in a 70-line 'index out of bounds' (the default 256 is more than a small model's 128 positions)."""
    if max_length < 1:
        raise ValueError(f"--max-length must be at least 1, got {max_length}")
    limit = position_limit(model)
    if limit is not None and max_length > limit:
        logger.warning("--max-length %d is more than the model's %d positions: inputs are cut to %d tokens",
                       max_length, limit, limit)
        return limit
    return max_length


# -- language adapters ---------------------------------------------------------------


def load_masked_lm(model_dir: str | Path):
    """``AutoModelForMaskedLM`` from ``model_dir``, refused when the folder has no MLM head: transformers
    would build a random one, and a language adapter trained against it learns nothing of the language."""
    model, loading = from_model_dir(AutoModelForMaskedLM, model_dir, output_loading_info=True)
    prefix = model.base_model_prefix + "."
    fresh = sorted(k for k in loading.get("missing_keys", []) if not k.startswith(prefix))
    if fresh:
        raise ModelDirError(f"{model_dir}: the model has no MLM head ({len(fresh)} head weights missing, e.g. "
                            f"{fresh[0]}); train one first with 'xling train-mlm-head --model {model_dir} --text ... "
                            f"--output-dir DIR' and pass --model DIR")
    return model


def attach_adapter_drop(host: TransformersHost, drop: AdapterDropConfig | None) -> AdapterDrop | None:
    """AdapterDrop (Rücklé et al. 2021) for training, leaving at least one layer with adapters; None without a config.

    The robust mode's n is a function of the seed and the Trainer's step (``adapter_core.drop``), so a
    resumed run draws what an uninterrupted one draws.
    """
    if drop is None:
        return None
    drop.check_fits(len(host.layers) - 1, "--adapter-drop-layers")
    return AdapterDrop(host, drop)


def _drop_metadata(drop: AdapterDropConfig | None) -> dict:
    return {"adapter_drop": dataclasses.asdict(drop)} if drop is not None else {}


def train_language_adapter(model_dir: str, language: str, text_files: list[str], options: TrainOptions,
                           skip_last_layer: bool = False, invertible: bool = True,
                           adapter_config: AdapterConfig | None = None, drop: AdapterDropConfig | None = None,
                           curve: CurveOptions | None = None) -> Path:
    """MLM-train a MAD-X language adapter (rf 2) with a NICE invertible adapter; returns the adapter dir.

    ``adapter_config`` replaces the rf-2 bottleneck (e.g. Compacter++);
    ``drop`` trains with AdapterDrop and is recorded in the adapter's metadata;
    ``curve`` scores held-out text during training (``mlm_curve.json`` in the
    adapter folder) and may stop at the plateau (``xling.lang_mlm_eval``).
    """
    lines = [line for path in text_files for line in read_text(path)]
    torch.manual_seed(options.seed)
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    model = load_masked_lm(model_dir)
    check_tokenizer_fits(tokenizer, model, model_dir)
    max_length = fitted_max_length(model, options.max_length)
    host = TransformersHost(model)
    host.add_adapter(language, role="language", config=adapter_config, invertible=invertible,
                     skip_last_layer=skip_last_layer)
    host.set_active(language)
    dropper = attach_adapter_drop(host, drop)
    trainable = host.train_only([language], train_head=False)
    logger.info("language adapter %s: %d trainable tensors", language, len(trainable))
    features = [{"input_ids": ids} for ids in tokenizer(lines, truncation=True, max_length=max_length)["input_ids"]]
    _check_batch(len(features), options, ", ".join(map(str, text_files)))
    dataset = MaskingSeedDataset(features, options.seed)
    collator = SeededMaskingCollator(tokenizer, mlm=True, mlm_probability=0.15, mask_replace_prob=0.8,
                                     random_replace_prob=0.1)
    callbacks = [EpochToDataset(dataset)]
    if curve is not None:
        from .lang_mlm_curve import MlmCurve
        from .lang_mlm_eval import heldout_batches

        scorer = MlmCurve(model, heldout_batches(tokenizer, read_text(curve.heldout_text), options.max_length),
                          curve.eval_steps, curve.plateau_delta, curve.plateau_window)
        callbacks.append(scorer)
    trainer = MaskedPositionsTrainer(model=model, args=_arguments(options), train_dataset=dataset,
                                     data_collator=collator, processing_class=tokenizer,
                                     callbacks=callbacks, compute_loss_func=masked_lm_loss)

    def build(tmp: Path) -> None:
        save_madx_adapter(host, language, tmp, metadata={"seed": options.seed, "model_dir": str(model_dir),
                                                         "learning_rate": options.learning_rate, **_drop_metadata(drop)})
        if curve is not None:
            from .lang_mlm_eval import CURVE_FILE

            atomic_write_json(tmp / CURVE_FILE, {"heldout_text": str(curve.heldout_text), **scorer.document()})

    return fit_and_publish(trainer, options, Path(options.output_dir) / "adapter", build, dropper)


# -- task models: one training with the prediction head -----------------------------------


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
    # The file the examples were read from (named in errors).
    train_file: str = ""
    # A term added to the task loss at every training step (AdapterFusion's value regularisation); None: none.
    regulariser: Callable[[], torch.Tensor] | None = None


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
    return TaskSetup(module=module, examples=examples, labels=labels, tokenizer=tokenizer, model=model,
                     train_file=str(train_file))


class HeadTrainer(TrainableCheckpoints, Trainer):
    """The ``Trainer`` of ``train_with_head``: the model's task loss, plus ``regulariser()`` when one is given;
    checkpoints hold the trainable tensors only (``TrainableCheckpoints``)."""

    def __init__(self, *args, regulariser: Callable[[], torch.Tensor] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.regulariser = regulariser

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                      num_items_in_batch=num_items_in_batch)
        if self.regulariser is None or not model.training:
            return result
        penalty = self.regulariser()
        if (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func is not None:
            # the task loss is already normalised over the accumulated batch; the Trainer will not divide it
            penalty = penalty / self.current_gradient_accumulation_steps
        if return_outputs:
            loss, outputs = result
            return loss + penalty, outputs
        return result + penalty


def train_with_head(setup: TaskSetup, options: TrainOptions, folder: str, build: Callable[[Path], None],
                    dropper: AdapterDrop | None = None) -> Path:
    """Train a task model with its prediction head and publish ``OUT/<folder>``; returns that directory.

    The one training of task adapters (``train_task_adapter``), AdapterFusion
    (``xling.fusion.train_fusion``) and full fine-tuning (``train_full_model``).
    The caller has built ``setup`` (``load_task_setup``) and chosen what
    trains; here the features are built and must fill one batch on every
    process, the Trainer runs (adding ``setup.regulariser()`` to the task
    loss, when set), and ``fit_and_publish`` writes the directory with
    ``build(tmp)`` on the main process only; the others wait until it exists.
    """
    features = setup.module.build_features(setup.examples, setup.tokenizer, setup.labels,
                                           fitted_max_length(setup.model, options.max_length))
    _check_batch(len(features), options, setup.train_file)
    trainer = HeadTrainer(model=setup.model, args=_arguments(options), train_dataset=ListDataset(features),
                          data_collator=setup.module.collator(setup.tokenizer), processing_class=setup.tokenizer,
                          regulariser=setup.regulariser)
    return fit_and_publish(trainer, options, Path(options.output_dir) / folder, build, dropper)


def save_head(host: TransformersHost, directory: Path) -> None:
    """The prediction head's tensors as ``head.safetensors``, which ``xling eval`` loads over a fresh task model."""
    names = set(host.head_parameter_names())
    save_side_tensors(directory, HEAD_WEIGHTS, {k: v for k, v in host.model.state_dict().items() if k in names})


def train_task_adapter(model_dir: str, task: str, language_adapter: str | None, train_file: str, options: TrainOptions,
                       task_name: str | None = None, labels_file: str | None = None,
                       skip_last_layer: bool = False, force: bool = False, adapter_config: AdapterConfig | None = None,
                       drop: AdapterDropConfig | None = None, train_layer_norms: bool = False) -> Path:
    """Train a task adapter (rf 16) stacked above a frozen language adapter (None: none), with its prediction head.

    ``adapter_config`` replaces the rf-16 bottleneck (e.g. Compacter++, or
    Houlsby's placement); ``drop`` trains with AdapterDrop and is recorded in
    ``task.json``, so that ``xling eval`` drops the same layers (specialised
    mode) by default.  ``train_layer_norms`` also trains the encoder's
    LayerNorms (Houlsby et al. 2019), saved beside the adapter (``LAYER_NORMS``)
    and loaded by ``xling eval`` with it.
    """
    setup = load_task_setup(model_dir, task, train_file, options.seed, labels_file)
    host = TransformersHost(setup.model)
    # No language adapter (None): the task adapter on the bare encoder, the comparison's "bare_task" row.
    lang = None if language_adapter is None else load_madx_adapter(host, language_adapter, force=force, role="language")
    name = task_name or task
    host.add_adapter(name, role="task", config=adapter_config, skip_last_layer=skip_last_layer)
    host.set_active(Stack(name) if lang is None else Stack(lang, name))
    host.train_only([name], train_head=True, train_layer_norms=train_layer_norms)
    dropper = attach_adapter_drop(host, drop)
    norms = {"train_layer_norms": True} if train_layer_norms else {}

    def build(tmp: Path) -> None:
        eject_prefix_tuning(host, name)  # prefix tuning saves the flat rows its MLP makes (Li & Liang 2021)
        save_madx_adapter(host, name, tmp, metadata={"task": task, "seed": options.seed, "source_language": lang,
                                                     **_drop_metadata(drop)})
        save_head(host, tmp)
        if train_layer_norms:
            save_layer_norms(host, tmp)
        atomic_write_json(tmp / TASK_INFO, {"task": task, "labels": setup.labels, "adapter_name": name,
                                            "seed": options.seed, "source_language": lang,
                                            "max_length": fitted_max_length(host.model, options.max_length),
                                            "train_file": str(train_file), **_drop_metadata(drop), **norms})

    return train_with_head(setup, options, "adapter", build, dropper)


def train_full_model(model_dir: str, task: str, train_file: str, options: TrainOptions,
                     labels_file: str | None = None) -> tuple[Path, TaskSetup]:
    """Fine-tune every weight of the task model (no adapters): the baseline of ``xling train-full``, ``xling
    drift`` and the learning-rate sweep.  Publishes ``OUT/model`` (model and tokenizer, ``save_pretrained``);
    returns it with the setup, whose model is the trained one."""
    setup = load_task_setup(model_dir, task, train_file, options.seed, labels_file)
    setup.model.requires_grad_(True)

    def build(tmp: Path) -> None:
        setup.model.save_pretrained(tmp)
        setup.tokenizer.save_pretrained(tmp)

    return train_with_head(setup, options, "model", build), setup
