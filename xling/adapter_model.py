"""The Python API of xling: a transformers model with adapters, in AdapterHub's conventions, as an ``nn.Module``.

    from xling import AdapterModel, Stack

    model = AdapterModel.from_pretrained("xlmr/")     # XLM-R or mBERT directory (config, weights, tokenizer)
    sw = model.load_adapter("ah/sw")                  # ours or AdapterHub's; the role comes from its config
    model.add_adapter("ner", role="task")             # a new MAD-X task adapter (rf 16)
    model.train_adapter("ner")                        # freeze the rest; Stack(sw, "ner") is set up by the caller
    model.set_active_adapters(Stack(sw, "ner"))       # language adapter below, task adapter above
    hidden = model(**model.tokenizer(["jambo"], return_tensors="pt")).last_hidden_state
    model.save_adapter("out/ner", "ner")              # ours; format="adapterhub" for AdapterHub's load_adapter
    model.save_pretrained("out/madx")                 # the base, its tokenizer, every adapter, the active setup

The names and argument orders are AdapterHub's (``add_adapter``, ``train_adapter``,
``set_active_adapters``, ``save_adapter(directory, name)``, ``load_adapter(directory)``,
``save_all_adapters(directory)``, ``delete_adapter(name)``).  The model is an ``nn.Module`` whose
parameters are the transformers model's (adapters included), so an optimizer or a ``Trainer`` takes it
as it is; its ``forward`` is the transformers model's.  A thin layer over what the ``xling`` commands
use: ``TransformersHost`` (adapters on forward hooks, ``xling.attach``), ``xling.adapter_io``,
``xling.adapterhub``, ``xling.fusion`` and ``xling.inference`` (prediction heads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from torch import nn
from transformers import AutoModel, AutoTokenizer

from adapter_core import (AdapterConfig, AdapterFormatError, Fuse, FusionConfig, UnknownAdapterError,
                          adapter_parameter_names, atomic_write_json, check_export_target, is_fusion_directory,
                          publish_directory, setup_from_json, setup_names)
from adapter_core.io import CONFIG_NAME, WEIGHTS_NAME
from adapter_core.io import read_json

from .adapter_io import load_madx_adapter, save_madx_adapter
from .adapterhub import export_adapterhub
from .attach import AdapterInfo, Setup, TransformersHost
from .attention_sites import eject_prefix_tuning
from .fusion import load_fusion, save_fusion
from .inference import load_head
from .train import HEAD_WEIGHTS, TASK_INFO, check_tokenizer_fits, from_model_dir, save_head

#: Written by ``save_pretrained``: the adapters (each under ``adapters/<name>/``) and the active setup.
SETUP_FILE = "madx_setup.json"
ADAPTERS_FOLDER = "adapters"
#: ``save_adapter`` formats: ours (safetensors, base fingerprint) and AdapterHub's (``model.load_adapter``).
FORMATS = ("ours", "adapterhub")
_TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")
#: The files ``save_adapter`` writes in our format.
OUR_FILES = (CONFIG_NAME, WEIGHTS_NAME, HEAD_WEIGHTS, TASK_INFO)


class AdapterModel(nn.Module):
    """A transformers encoder (XLM-R, mBERT; bare, with an MLM head or a task head) carrying adapters: MAD-X's,
    Houlsby's, Compacter(++), AdapterFusion.

    ``model`` is the transformers model (a submodule: its forward runs unchanged, the adapters sit on hooks
    and their parameters inside it), ``tokenizer`` its tokenizer or None, ``host`` the ``TransformersHost``
    that holds the adapters.
    """

    def __init__(self, model: nn.Module, tokenizer=None):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.host = TransformersHost(model)
        # The transformers model's own forward, so that its signature is what a Trainer inspects (it keeps the
        # data set columns the forward names: input_ids, attention_mask, labels ...).
        self.forward = model.forward

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, model_class=None, force: bool = False, **kwargs) -> AdapterModel:
        """Load a local model directory with ``model_class.from_pretrained`` (default ``AutoModel``).

        ``model_class``: e.g. ``AutoModelForMaskedLM`` (the MLM head, where a
        language adapter's NICE inverse applies) or
        ``AutoModelForTokenClassification`` (``num_labels=...`` among ``kwargs``,
        which go to ``from_pretrained``).  The tokenizer is loaded when the
        directory has one.  A directory written by ``save_pretrained`` also gets
        its adapters and active setup back (``force``: even adapters saved on
        another base).
        """
        model = from_model_dir(model_class or AutoModel, model_dir, **kwargs)
        tokenizer = None
        if any((Path(model_dir) / name).is_file() for name in _TOKENIZER_FILES):
            tokenizer = from_model_dir(AutoTokenizer, model_dir)
            check_tokenizer_fits(tokenizer, model, model_dir)
        madx = cls(model, tokenizer)
        if (Path(model_dir) / SETUP_FILE).is_file():
            madx._load_setup(Path(model_dir), force)
        return madx

    # -- adapters -----------------------------------------------------------------------
    @property
    def adapters(self) -> dict[str, AdapterInfo]:
        """The adapters by name: role, config, invertible adapter, layers."""
        return self.host.adapters

    @property
    def active(self) -> Setup:
        """The active setup: None, a name, a ``Stack`` or a ``Fuse``."""
        return self.host.active

    def add_adapter(self, name: str, config: AdapterConfig | None = None, role: str = "language",
                    invertible: AdapterConfig | bool | None = True, skip_last_layer: bool = False,
                    layers: Iterable[int] | None = None) -> AdapterInfo:
        """Add a new adapter: "language" (rf 2, with NICE unless ``invertible=False``) or "task" (rf 16).

        ``config`` replaces the bottleneck (e.g. ``adapter_core.compacter_plus_plus_2021``),
        ``skip_last_layer`` leaves the last layer out (MAD-X 2.0), ``layers`` picks the layers.
        """
        return self.host.add_adapter(name, role=role, config=config, invertible=invertible,
                                     skip_last_layer=skip_last_layer, layers=None if layers is None else list(layers))

    def load_adapter(self, directory: str | Path, name: str | None = None, role: str | None = None,
                     force: bool = False, with_head: bool = False) -> str:
        """Load an adapter directory, ours or AdapterHub's (``save_adapter``), or AdapterFusion layers (their
        adapters loaded first); returns its name.

        The role comes from the adapter's config; ``role`` ("language" or
        "task"), if given, is checked against it.  ``name`` renames it, ``force``
        loads one of ours made for another base.  ``with_head`` also copies the
        prediction head saved beside a task adapter (ours: ``head.safetensors``;
        AdapterHub: ``pytorch_model_head.bin``) into the model, which must be the
        task's model with as many labels.
        """
        if with_head:
            load_head(self.host, directory)  # checked and copied whole before the adapter changes anything
        if is_fusion_directory(directory):
            return load_fusion(self.host, directory, force=force).name
        return load_madx_adapter(self.host, directory, name=name, force=force, role=role)

    def add_adapter_fusion(self, fuse: Fuse, config: FusionConfig | None = None) -> Fuse:
        """Add an AdapterFusion layer over loaded adapters, e.g. ``Fuse("ner", "pos")`` (then
        ``set_active_adapters(Fuse(...))`` or ``Stack("sw", Fuse(...))``)."""
        return self.host.add_fusion(fuse, config)

    def set_active_adapters(self, setup: Setup) -> None:
        """Activate ``setup`` for every later call: a name, ``Stack("sw", "ner")``, a ``Fuse``, or None (the base)."""
        self.host.set_active(setup)

    def train_adapter(self, setup: Setup | list[str], train_head: bool = True) -> list[str]:
        """Train only the adapters (and fusion layers) of ``setup`` (a name, ``Stack``, ``Fuse`` or list of names)
        and, unless ``train_head=False``, the prediction head; freeze the rest, activate ``setup`` (as AdapterHub
        does; then ``set_active_adapters(Stack(lang, task))`` for MAD-X) and switch to training mode.  Returns
        the names of the trainable parameters (inside ``.model``)."""
        names = list(setup) if isinstance(setup, list) else list(setup_names(setup))
        names += [fuse.name for fuse in _fuses(setup)]
        trainable = self.host.train_only(names, train_head=train_head)
        if not isinstance(setup, list):
            self.set_active_adapters(setup)
        self.train()
        return trainable

    def delete_adapter(self, name: str) -> None:
        """Remove adapter ``name`` (its modules and parameters); refused while it is active or fused."""
        if name in setup_names(self.host.active) or any(name in f.names for f in self.host.fusions.values()):
            raise ValueError(f"adapter {name!r} is active or fused; set_active_adapters(None) (or leave the fusion) "
                             "first")
        self.host.delete_adapter(name)

    def eject_prefix_tuning(self, name: str) -> None:
        """Replace prefix-tuning adapter ``name``'s reparametrisation (Li & Liang's MLP) by the flat rows it makes
        now: the same outputs, 2 l d weights per layer (AdapterHub's ``eject_prefix_tuning``); no-op otherwise."""
        eject_prefix_tuning(self.host, name)

    # -- saving ----------------------------------------------------------------------
    def save_adapter(self, directory: str | Path, name: str, format: str = "ours", task: str | None = None,
                     labels: list[str] | None = None) -> Path:
        """Write adapter ``name`` (or fusion layers ``name``) to ``directory``: ``format`` "ours" or "adapterhub".

        ``directory`` must be new, empty, or this adapter's own earlier save in the same format (replaced
        whole, atomically); a folder holding another adapter or other files is refused (``ExportTargetError``).

        Ours is ``adapter_config.json`` + ``adapter_model.safetensors`` with the
        base fingerprint (what ``xling train-lang``/``train-task`` write);
        "adapterhub" is what AdapterHub's ``model.load_adapter`` reads.  A task
        adapter given ``task`` (e.g. "ner") and ``labels`` also gets the model's
        prediction head (ours: ``head.safetensors`` + ``task.json``, for ``xling eval``).
        """
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        if name in self.host.fusions and format == "ours" and task is None:
            return save_fusion(self.host, name, directory)
        if name not in self.host.adapters:
            raise UnknownAdapterError(f"no adapter {name!r}; known: {', '.join(self.host.adapters) or '(none)'}")
        if (task is None) != (labels is None):
            raise ValueError("give both task and labels to save a prediction head, or neither")
        if task is not None and self.host.adapters[name].role != "task":
            raise ValueError(f"adapter {name!r} is a {self.host.adapters[name].role} adapter; only a task "
                             "adapter is saved with a prediction head")
        if format == "adapterhub":
            return export_adapterhub(self.host, name, directory, task=task, labels=labels)
        check_export_target(directory, name, OUR_FILES, lambda document: "format_version" in document)

        def build(tmp: Path) -> None:
            save_madx_adapter(self.host, name, tmp, metadata={"task": task} if task else None)
            if task is not None:
                save_head(self.host, tmp)
                atomic_write_json(tmp / TASK_INFO, {"task": task, "labels": list(labels), "adapter_name": name})

        return publish_directory(directory, build)  # atomic: a new or empty folder, or this adapter's own

    def save_all_adapters(self, directory: str | Path, format: str = "ours") -> list[Path]:
        """Every adapter (and, in our format, every fusion) under ``directory/<name>/``."""
        names = list(self.host.adapters) + (list(self.host.fusions) if format == "ours" else [])
        return [self.save_adapter(Path(directory) / name, name, format=format) for name in names]

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write the base model (without adapter tensors) and tokenizer, every adapter, and the active setup.

        The model files are transformers' own (``config.json``,
        ``model.safetensors``), readable without xling; the adapters go to
        ``adapters/<name>/`` in our format and ``madx_setup.json`` lists them with
        the active setup, so that ``AdapterModel.from_pretrained(directory)`` gives
        the same model back (fusion layers too, after the adapters they fuse).
        """
        directory = Path(directory)
        skip = adapter_parameter_names(self.model)
        self.model.save_pretrained(directory, state_dict={k: v for k, v in self.model.state_dict().items()
                                                          if k not in skip})
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(directory)
        self.save_all_adapters(directory / ADAPTERS_FOLDER)
        active = self.host.active
        atomic_write_json(directory / SETUP_FILE, {
            "adapters": list(self.host.adapters), "fusions": list(self.host.fusions),
            "skipped_layers": sorted(self.host.skipped_layers),
            "active": active.to_json() if hasattr(active, "to_json") else active})
        return directory

    def _load_setup(self, directory: Path, force: bool) -> None:
        path = directory / SETUP_FILE
        document = read_json(path)
        names = document.get("adapters") if isinstance(document, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise AdapterFormatError(f"{path}: expected {{'adapters': [names], 'active': setup}}")
        for name in names:
            load_madx_adapter(self.host, directory / ADAPTERS_FOLDER / name, name=name, force=force)
        for name in document.get("fusions", []):
            load_fusion(self.host, directory / ADAPTERS_FOLDER / name, force=force)
        try:
            self.host.set_skipped_layers(document.get("skipped_layers", []))
            self.set_active_adapters(setup_from_json(document.get("active")))
        except (TypeError, ValueError, KeyError) as err:
            raise AdapterFormatError(f"{path}: {err}") from None

    def __repr__(self) -> str:
        adapters = ", ".join(f"{n} ({info.role})" for n, info in self.host.adapters.items()) or "none"
        return f"AdapterModel({type(self.model).__name__}, adapters: {adapters}; active: {self.host.active!r})"


def _fuses(setup: Setup) -> list[Fuse]:
    """The ``Fuse`` items of a setup (a ``Stack`` holds them as elements)."""
    if isinstance(setup, Fuse):
        return [setup]
    return [item for item in getattr(setup, "names", ()) if isinstance(item, Fuse)] if setup is not None else []

