"""Training and loading a K-Adapter task model (``xling.k_adapter``) in the xling pipeline.

    xling train-task --adapter-kind k-adapter --task pos --model DIR --lang-adapter EN/adapter --train en.pos \\
        --output-dir KA [--k-adapter-layers 0 6 11] [--k-adapter-dim 288]
    xling eval --model DIR --task-adapter KA/adapter --lang-adapter TR/adapter --lang tr --data tr.pos --output tr.json

As with a task adapter (``xling.train.train_task_adapter``) the source
language adapter is loaded into the encoder, active and frozen; the K-adapter
reads that encoder's hidden states from beside it, so ``xling eval`` and
``studies.xling_comparison eval-adapter`` swap language adapters under a K-adapter as
under a task adapter.  Training is the task adapters' ``train_with_head``;
``OUT/adapter`` holds the K-adapter (adapter_core's format, config a
``KAdapterConfig``), its head (``head.safetensors``) and ``task.json`` with
``adapter_kind: "k-adapter"``, which ``xling.inference.load_task_model``
dispatches on.  Token-level tasks only (NER, POS): the head tags each token.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from transformers import AutoConfig, AutoTokenizer

from adapter_core import Stack, atomic_write_json

from .adapter_io import load_madx_adapter
from .attach import TransformersHost
from .kinds import K_ADAPTER_KIND
from .inference import LoadedTaskModel, _activate
from .k_adapter import KAdapterConfig, KAdapterTaskModel, k_adapter_2021, load_k_adapter_weights, read_k_adapter, save_k_adapter
from .train import (TASK_INFO, TrainOptions, build_task_model, check_tokenizer_fits, from_model_dir, load_task_setup,
                    train_with_head)

#: The tasks a K-adapter's head serves: one label per token.
K_ADAPTER_TASKS = ("ner", "pos")
#: train-task flags of the hook-hosted adapters that a K-adapter has no use for, with their "not given" values.
NOT_FOR_K_ADAPTER = {"adapter_placement": None, "adapter_reduction_factor": None, "adapter_phm_dim": None,
                     "adapter_dim": None, "adapter_lora_alpha": None, "adapter_prefix_mlp_dim": None,
                     "adapter_drop_mode": None, "adapter_drop_layers": None, "skip_last_layer": False,
                     "train_layer_norms": False}


def _language_setup(host: TransformersHost, language_adapter: str | None, force: bool) -> Stack | None:
    """Load the language adapter into the encoder (frozen, active underneath the K-adapter); None without one."""
    if language_adapter is None:
        return None
    return Stack(load_madx_adapter(host, language_adapter, force=force, role="language"))


def train_k_adapter(model_dir: str, task: str, language_adapter: str | None, train_file: str, options: TrainOptions,
                    config: KAdapterConfig | None = None, task_name: str | None = None, force: bool = False) -> Path:
    """Train a K-adapter and its head beside the frozen encoder (with ``language_adapter`` active in it, if
    given); returns ``OUT/adapter``.  ``config``: default ``k_adapter_2021`` scaled to the encoder."""
    if task not in K_ADAPTER_TASKS:
        raise ValueError(f"--adapter-kind k-adapter: task {task!r} is not token-level; K-adapters here serve "
                         f"{', '.join(K_ADAPTER_TASKS)}")
    setup = load_task_setup(model_dir, task, train_file, options.seed)
    host = TransformersHost(setup.model)
    language = _language_setup(host, language_adapter, force)
    host.set_active(language)
    fingerprint = host.base_fingerprint()
    config = config or k_adapter_2021(host.hidden_size, len(host.layers))
    model = KAdapterTaskModel(setup.model.base_model, config, num_labels=len(setup.labels))
    name, source = task_name or task, language.names[0] if language else None
    info = {"task": task, "labels": setup.labels, "adapter_name": name, "adapter_kind": K_ADAPTER_KIND,
            "seed": options.seed, "source_language": source, "train_file": str(train_file),
            "trainable_parameters": model.trainable_parameter_count()}

    def build(tmp: Path) -> None:
        save_k_adapter(model, tmp, fingerprint, name, metadata={"task": task, "seed": options.seed,
                                                                "source_language": source})
        atomic_write_json(tmp / TASK_INFO, info)

    return train_with_head(dataclasses.replace(setup, model=model), options, "adapter", build)


def load_k_adapter_task_model(model_dir: str, task_adapter: str | Path, language_adapter: str | None, info: dict,
                              force: bool = False) -> LoadedTaskModel:
    """The K-adapter task model of ``task_adapter`` (``task.json``: ``info``) over ``language_adapter``, for
    inference: ``loaded.setup`` is ``Stack(language)``, the K-adapter being outside the encoder."""
    tokenizer = from_model_dir(AutoTokenizer, model_dir)
    task_model = build_task_model(model_dir, info["task"], info["labels"])
    check_tokenizer_fits(tokenizer, task_model, model_dir)
    host = TransformersHost(task_model)
    language = _language_setup(host, language_adapter, force)
    saved = read_k_adapter(task_adapter, host.base_fingerprint(), force=force)
    model = KAdapterTaskModel(task_model.base_model, saved.config, num_labels=len(info["labels"]))
    load_k_adapter_weights(model, saved, task_adapter)
    return _activate(info, tokenizer, model, host, language)


def k_adapter_config_from_args(args) -> KAdapterConfig:
    """The K-adapter config of train-task's flags: the paper's, scaled to ``--model``, with --k-adapter-* applied."""
    given = [f"--{k.replace('_', '-')}" for k, unset in NOT_FOR_K_ADAPTER.items() if getattr(args, k, unset) != unset]
    if given:
        raise ValueError(f"{', '.join(given)}: not for --adapter-kind k-adapter (it sits beside the encoder, "
                         "not in its layers)")
    base = from_model_dir(AutoConfig, args.model)
    changes = {}
    if args.k_adapter_layers is not None:
        changes["read_layers"] = tuple(args.k_adapter_layers)
    if args.k_adapter_dim is not None:
        changes.update(adapter_dim=args.k_adapter_dim, intermediate_dim=4 * args.k_adapter_dim)
    config = k_adapter_2021(base.hidden_size, base.num_hidden_layers, **changes)
    config.check_encoder(base.num_hidden_layers)
    return config


def train_k_adapter_from_args(args, train, options: TrainOptions) -> Path:
    """``xling train-task --adapter-kind k-adapter``."""
    if args.train_labels:
        raise ValueError("--train-labels is for SIQA; --adapter-kind k-adapter trains token-level tasks")
    return train_k_adapter(args.model, args.task, args.lang_adapter, train, options,
                           config=k_adapter_config_from_args(args), task_name=args.name, force=args.force)
