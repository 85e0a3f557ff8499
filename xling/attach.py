"""MAD-X adapters on a transformers encoder (XLM-R, mBERT), attached with forward hooks.

Pfeiffer et al. (2020), "MAD-X: An Adapter-Based Framework for Multi-Task
Cross-Lingual Transfer".  No forward code is copied and no class is swapped:

- In every layer's FFN output block (``*Output``: dense -> dropout ->
  LayerNorm(. + x)), a forward pre-hook captures the block's ``input_tensor``
  x, and a forward hook on its ``dropout`` replaces the FFN output h by
  r = h + A(LN(h + x)), using the block's own LayerNorm.  In a ``Stack`` each
  adapter repeats the step on the previous r.  The block then computes
  LN(r + x) itself.  This is AdapterHub's ``seq_bn`` placement.  The hooks
  only capture x and call ``adapter_core.compose``, which runs every setup
  (``Stack``, ``Fuse``) for both hosts.
- The invertible adapter (NICE) of the stack's first adapter wraps the
  embeddings output (after their LayerNorm and dropout); its inverse runs in
  the MLM head after dense -> gelu -> LayerNorm, before the tied decoder.
- Houlsby et al. (2019), "Parameter-Efficient Transfer Learning for NLP" (an
  adapter whose config says placement "houlsby"): a forward
  hook on the dropout of the attention output block (``attention.output``:
  dense -> dropout -> LayerNorm(. + x)) replaces its output h by h + A(h), and
  the FFN output block's dropout hook does the same there (no LayerNorm inside
  the adapter's input), so both sit after the output projection and before the
  residual add and LayerNorm, as in the paper's code.  ``train_only(...,
  train_layer_norms=True)`` also trains the encoder's LayerNorms, as the paper
  does.  Each adapter of a ``Stack`` runs at its own sites.
- LoRA (Hu et al. 2021) on the self-attention's projections and prefix tuning
  (Li & Liang 2021) on its keys and values: ``xling.attention_sites``.
- Beyond MAD-X: Compacter++ (a "compacter" config in the Pfeiffer position),
  Compacter (its Houlsby placement), each with its A_i shared by all the
  adapter's modules, AdapterFusion (a ``Fuse`` in the setup: r = r + sum_n
  s_n V A_n(LN(r + x)), see ``xling.fusion``; Pfeiffer-placed adapters only),
  and skipping the adapters of some layers (``skipped_layers``: AdapterDrop,
  layer ablation, pruning; "skip" is the switch, "drop" the AdapterDrop policy
  that sets it, ``adapter_core.drop``).

The adapter modules are registered as submodules (``madx_adapters`` on each
output block, and on each attention output block once a Houlsby-placed
adapter needs it; ``madx_invertible`` on the embeddings), so the Trainer's
optimizer and checkpoints see them; the model's config object is never
touched.  The sites are ``adapter_core.placement``'s: ``Site.FFN_PFEIFFER``,
``Site.FFN`` and ``Site.ATTENTION`` are mapped here, once (``_bank``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import contextlib
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn

from adapter_core import (ATTENTION_SITES, SITE_PREFIX, AdapterBank, AdapterConfig, AdapterFusionLayer, FusionConfig,
                          Fuse, Setup, Site, UnknownAdapterError, check_sites, compose, current, fingerprint_tensors,
                          madx_invertible, madx_language, madx_task, setup_names, setup_steps, share_phm_rule,
                          share_prefix_encoder)
from adapter_core.freeze import adapter_parameter_names, freeze_base

from . import attention_sites

#: The adapter_core context slot that selects the active setup, e.g. ``active_adapters(xling=Stack("en", "ner"))``.
SLOT = "xling"

#: The adapter_core sites the hooks offer in a layer (invertible adapters go on the embeddings): the bottleneck
#: sites, and the self-attention's (LoRA's projections, prefix tuning's keys and values: ``xling.attention_sites``).
LAYER_SITES = (Site.ATTENTION, Site.FFN, Site.FFN_PFEIFFER, *ATTENTION_SITES)


class PlacementError(ValueError):
    """A model whose layout the MAD-X hooks do not recognise."""


@dataclass
class _LayerState:
    """The output block's ``input_tensor``, from its pre-hook to its dropout hook."""

    # x, the attention block's output, captured during the current forward.
    input_tensor: torch.Tensor | None = None


@dataclass
class AdapterInfo:
    """What the host knows about one named adapter."""

    # "language" (with an optional invertible adapter) or "task".
    role: str
    # The bottleneck config shared by every layer that carries the adapter.
    config: AdapterConfig
    # The invertible adapter's config, or None.
    invertible: AdapterConfig | None = None
    # Layer indices that carry the adapter (MAD-X 2.0 leaves the last one out).
    layers: list[int] = field(default_factory=list)


def mlm_head(model: nn.Module) -> nn.Module | None:
    """The module mapping hidden states to vocabulary logits: XLM-R's ``lm_head``, BERT's ``cls``; None without one."""
    for name in ("lm_head", "cls"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            return head
    return None


@contextlib.contextmanager
def mlm_logits_at(model: nn.Module, positions: torch.Tensor) -> Iterator[None]:
    """Inside the block, the MLM head computes logits only where ``positions`` (batch x length, bool) is True.

    The masked-LM loss needs the vocabulary projection at the masked
    positions only (15%); the head is position-wise (dense, gelu, LayerNorm,
    the NICE inverse, the tied decoder), so a forward pre-hook that keeps those
    rows gives the same logits, as one (masked positions x vocabulary) matrix.
    """
    head = mlm_head(model)
    if head is None:
        raise PlacementError(f"{type(model).__name__} has no MLM head (lm_head or cls)")

    def keep_positions(module, args):
        hidden = args[0]
        return (hidden[positions.to(hidden.device)],) + tuple(args[1:])

    handle = head.register_forward_pre_hook(keep_positions)
    try:
        yield
    finally:
        handle.remove()


def masked_lm_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """Cross-entropy of logits made under ``mlm_logits_at(model, labels != -100)``; as transformers' MLM loss.

    Mean over the masked positions, or their sum divided by
    ``num_items_in_batch`` when the Trainer gives it (gradient accumulation).
    """
    logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
    targets = labels[labels != -100].to(logits.device)
    if num_items_in_batch is None:
        return nn.functional.cross_entropy(logits.float(), targets)
    return nn.functional.cross_entropy(logits.float(), targets, reduction="sum") / num_items_in_batch


class TransformersHost:
    """Adds, activates, freezes and exports adapters on one transformers model: MAD-X's (Pfeiffer's site, NICE),
    Houlsby's, Compacter(++), AdapterFusion; the K-adapter's task model builds on it (``xling.k_adapter``)."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.base = getattr(model, "base_model", model)
        self.base_prefix = self._base_prefix()
        self.outputs = self._find_output_blocks()
        self.embeddings = getattr(self.base, "embeddings", None)
        if self.embeddings is None:
            raise PlacementError(f"{type(self.base).__name__} has no 'embeddings' module for the invertible adapter")
        self.inverse_point = self._find_inverse_point()
        self.layers = list(self.base.encoder.layer)
        self.hidden_size = self.outputs[0].dense.out_features
        self.active: Setup = None
        self.adapters: dict[str, AdapterInfo] = {}
        # Fusion layers by name (AdapterFusion), and the layers whose adapters are switched off.
        self.fusions: dict[str, Fuse] = {}
        self.skipped_layers: frozenset[int] = frozenset()
        # The attention output blocks, found and hooked when the first Houlsby-placed adapter arrives.
        self.attention_outputs: list[nn.Module] | None = None
        # The self-attention sites (LoRA, prefix tuning), set up when the first such adapter arrives.
        self.attention_sites: attention_sites.AttentionSites | None = None
        # The base fingerprint as loaded, kept once the base's LayerNorms are trained or loaded.
        self._pinned_fingerprint: str | None = None
        self._states = [_LayerState() for _ in self.outputs]
        self._handles = []
        for i, block in enumerate(self.outputs):
            block.madx_adapters = AdapterBank(madx_language(self.hidden_size))
            self._handles.append(block.register_forward_pre_hook(self._capture_hook(i), with_kwargs=True))
            self._handles.append(block.dropout.register_forward_hook(self._adapter_hook(i)))
        self.embeddings.madx_invertible = AdapterBank(madx_invertible(self.hidden_size))
        self._handles.append(self.embeddings.register_forward_hook(self._invertible_hook))
        if self.inverse_point is not None:
            self._handles.append(self.inverse_point.register_forward_hook(self._inverse_hook))

    # -- locating the insertion points ----------------------------------------
    def _base_prefix(self) -> str:
        if self.base is self.model:
            return ""
        for name, module in self.model.named_children():
            if module is self.base:
                return name + "."
        raise PlacementError(f"cannot find the base model inside {type(self.model).__name__}")

    def _find_output_blocks(self) -> list[nn.Module]:
        layers = getattr(getattr(self.base, "encoder", None), "layer", None)
        if layers is None:
            raise PlacementError(f"{type(self.base).__name__} has no encoder.layer list (XLM-R and BERT have one)")
        blocks = []
        for i, layer in enumerate(layers):
            block = getattr(layer, "output", None)
            if block is None or not all(hasattr(block, a) for a in ("dense", "dropout", "LayerNorm")):
                raise PlacementError(f"encoder.layer.{i}.output is not an FFN output block with dense, dropout and LayerNorm")
            blocks.append(block)
        return blocks

    def _attention_blocks(self) -> list[nn.Module]:
        """Each layer's attention output block (dense -> dropout -> LayerNorm(. + x)), banked and hooked once."""
        if self.attention_outputs is None:
            blocks = []
            for i, layer in enumerate(self.layers):
                block = getattr(getattr(layer, "attention", None), "output", None)
                if block is None or not all(hasattr(block, a) for a in ("dense", "dropout", "LayerNorm")):
                    raise PlacementError(f"encoder.layer.{i}.attention.output is not an attention output block with "
                                         "dense, dropout and LayerNorm (Houlsby placement)")
                blocks.append(block)
            for i, block in enumerate(blocks):
                block.madx_adapters = AdapterBank(madx_language(self.hidden_size))
                self._handles.append(block.dropout.register_forward_hook(self._attention_hook(i, block)))
            self.attention_outputs = blocks
        return self.attention_outputs

    def _bank(self, site: Site, index: int) -> AdapterBank:
        """The bank that holds layer ``index``'s adapters at ``site``: where the sites meet the modules."""
        if site in ATTENTION_SITES:
            return attention_sites.attention_sites(self).bank(site, index)
        if site == Site.ATTENTION:
            return self._attention_blocks()[index].madx_adapters
        return self.outputs[index].madx_adapters  # Site.FFN and Site.FFN_PFEIFFER: the FFN output block

    def _find_inverse_point(self) -> nn.Module | None:
        """The MLM head module whose output feeds the tied decoder, or None without an MLM head."""
        lm_head = getattr(self.model, "lm_head", None)
        if lm_head is not None and hasattr(lm_head, "layer_norm"):
            return lm_head.layer_norm  # XLM-R: dense -> gelu -> layer_norm -> decoder
        predictions = getattr(getattr(self.model, "cls", None), "predictions", None)
        if predictions is not None and hasattr(predictions, "transform"):
            return predictions.transform  # BERT: transform(dense -> act -> LayerNorm) -> decoder
        return None

    # -- hooks ------------------------------------------------------------------
    def current_setup(self) -> Setup:
        return current(SLOT, self.active)

    def _capture_hook(self, index: int):
        def hook(module, args, kwargs):
            self._states[index].input_tensor = args[1] if len(args) > 1 else kwargs["input_tensor"]
        return hook

    def _adapter_hook(self, index: int):
        block = self.outputs[index]

        def read(r, adapter, x):  # Houlsby: A(h); Pfeiffer: A(LN(h + x)), with the block's own LayerNorm
            return r if Site.FFN in adapter.config.sites else block.LayerNorm(r + x)

        def hook(module, args, output):
            x = self._states[index].input_tensor
            self._states[index].input_tensor = None
            if x is None or index in self.skipped_layers:
                return None
            r = compose(self.current_setup(), output, block.madx_adapters.adapters, getattr(block, "madx_fusion", None),
                        read=read, extras=(x,), missing="skip")
            return None if r is output else r
        return hook

    def _attention_hook(self, index: int, block: nn.Module):
        def hook(module, args, output):  # Houlsby: h + A(h); fusions are refused here
            if index in self.skipped_layers:
                return None
            r = compose(self.current_setup(), output, block.madx_adapters.adapters, missing="skip")
            return None if r is output else r
        return hook

    def _invertible_name(self) -> str | None:
        items = setup_steps(self.current_setup())
        if items and isinstance(items[0], str) and items[0] in self.embeddings.madx_invertible.adapters:
            return items[0]
        return None

    def _invertible_hook(self, module, args, output):
        name = self._invertible_name()
        return None if name is None else self.embeddings.madx_invertible.adapters[name](output)

    def _inverse_hook(self, module, args, output):
        name = self._invertible_name()
        return None if name is None else self.embeddings.madx_invertible.adapters[name].inverse(output)

    # -- adding adapters ---------------------------------------------------------
    def add_adapter(self, name: str, role: str = "language", config: AdapterConfig | None = None,
                    invertible: AdapterConfig | None | bool = True, skip_last_layer: bool = False,
                    layers: Sequence[int] | None = None) -> AdapterInfo:
        """Add a language adapter (rf 2, with NICE unless ``invertible=False``) or a task adapter (rf 16).

        ``config.placement`` says where: Pfeiffer's FFN site ("pfeiffer", MAD-X's) or Houlsby's two sites
        ("houlsby"); an invertible adapter always goes on the embeddings.
        """
        if role not in ("language", "task"):
            raise ValueError(f"role must be 'language' or 'task', got {role!r}")
        if name in self.adapters:
            raise ValueError(f"adapter {name!r} already exists; known: {', '.join(self.adapters)}")
        if config is None:
            config = madx_language(self.hidden_size) if role == "language" else madx_task(self.hidden_size)
        if config.hidden_dim != self.hidden_size:
            raise ValueError(f"adapter {name!r} has hidden_dim {config.hidden_dim} but the model's hidden size is {self.hidden_size}")
        sites = check_sites(config.placement, LAYER_SITES, "xling's MAD-X hooks")
        if invertible is True:
            invertible = madx_invertible(self.hidden_size) if role == "language" else None
        elif invertible is False:
            invertible = None
        if layers is None:
            layers = list(range(len(self.outputs) - (1 if skip_last_layer else 0)))
        banks = [(i, site, self._bank(site, i)) for i in layers for site in sites]
        for _, _, bank in banks:
            bank.add(name, config)
        if config.kind == "compacter":  # Karimi Mahabadi et al. (2021): one A for all layers (and both sites)
            share_phm_rule([bank.adapters[name] for _, _, bank in banks])
        elif config.kind == "prefix_tuning":  # a reparametrised prefix: one encoder for all layers (Li & Liang)
            share_prefix_encoder([bank.adapters[name] for _, _, bank in banks])
        if invertible is not None:
            self.embeddings.madx_invertible.add(name, invertible)
        device, dtype = self._base_device_dtype()  # as AdapterHub does: new adapters live where the model does
        for _, _, bank in banks:
            bank.adapters[name].to(device=device, dtype=dtype)
        if invertible is not None:
            self.embeddings.madx_invertible.adapters[name].to(device=device, dtype=dtype)
        info = AdapterInfo(role=role, config=config, invertible=invertible, layers=list(layers))
        self.adapters[name] = info
        return info

    def delete_adapter(self, name: str) -> None:
        """Remove adapter ``name``: its modules at every site, its invertible adapter, its entry."""
        if name not in self.adapters:
            raise UnknownAdapterError(f"no adapter {name!r}; known: {', '.join(self.adapters) or '(none)'}")
        info = self.adapters.pop(name)
        for i in info.layers:
            for site in info.config.sites:
                del self._bank(site, i).adapters[name]
        if info.invertible is not None:
            del self.embeddings.madx_invertible.adapters[name]

    def _base_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        """Where the model's weights are, and their floating-point type (for modules added later)."""
        weight = next(p for p in self.model.parameters() if p.is_floating_point())
        return weight.device, weight.dtype

    def add_fusion(self, fuse: Fuse, config: FusionConfig | None = None) -> Fuse:
        """Add an AdapterFusion layer (Pfeiffer et al. 2021) named ``fuse.name`` to every layer."""
        for name in fuse.names:
            if name not in self.adapters:
                raise UnknownAdapterError(f"cannot fuse unknown adapter {name!r}; "
                                          f"known: {', '.join(self.adapters) or '(none)'}")
            if self.adapters[name].config.sites != (Site.FFN_PFEIFFER,):
                raise ValueError(f"AdapterFusion fuses Pfeiffer-placed adapters (at the FFN output); {name!r} is "
                                 f"placed {self.adapters[name].config.placement!r}")
        if fuse.name in self.fusions or fuse.name in self.adapters:
            raise ValueError(f"fusion name {fuse.name!r} is already taken")
        config = config or FusionConfig(hidden_dim=self.hidden_size)
        for block in self.outputs:
            if not hasattr(block, "madx_fusion"):
                block.madx_fusion = nn.ModuleDict()
            block.madx_fusion[fuse.name] = AdapterFusionLayer(config).to(*self._base_device_dtype())
        self.fusions[fuse.name] = fuse
        return fuse

    def delete_fusion(self, name: str) -> None:
        """Remove fusion ``name``: its layer in every block, its entry (the adapters it fused stay)."""
        if name not in self.fusions:
            raise UnknownAdapterError(f"no fusion {name!r}; known: {', '.join(self.fusions) or '(none)'}")
        del self.fusions[name]
        for block in self.outputs:
            del block.madx_fusion[name]

    def fusion_layers(self, name: str) -> list[AdapterFusionLayer]:
        if name not in self.fusions:
            raise UnknownAdapterError(f"no fusion {name!r}; known: {', '.join(self.fusions) or '(none)'}")
        return [block.madx_fusion[name] for block in self.outputs]

    def set_active(self, setup: Setup) -> None:
        """The setup used when no ``active_adapters(xling=...)`` context is open."""
        for name in setup_names(setup):
            if name not in self.adapters:
                raise UnknownAdapterError(f"no adapter {name!r}; known: {', '.join(self.adapters) or '(none)'}")
        for item in setup_steps(setup):
            if isinstance(item, Fuse) and item.name not in self.fusions:
                raise UnknownAdapterError(f"no fusion layer {item.name!r}; add it with add_fusion first")
        self.active = setup

    @contextlib.contextmanager
    def adapters_skipped(self, layers: Iterable[int]) -> Iterator[None]:
        """Switch the adapters (and fusion) of ``layers`` off inside the block: ablation, AdapterDrop, pruning."""
        previous = self.skipped_layers
        self.set_skipped_layers(set(previous) | set(layers))
        try:
            yield
        finally:
            self.skipped_layers = previous

    def set_skipped_layers(self, layers: Iterable[int]) -> None:
        """Switch the adapters of ``layers`` off until changed; their cost is skipped too."""
        layers = frozenset(int(i) for i in layers)
        bad = sorted(i for i in layers if not 0 <= i < len(self.outputs))
        if bad:
            raise ValueError(f"layer indices {bad} out of range; the model has {len(self.outputs)} layers")
        self.skipped_layers = layers

    # -- compiling ----------------------------------------------------------------
    def compile(self, **kwargs) -> nn.Module:
        """``torch.compile(self.model, **kwargs)``, with dynamo guarding on forward hooks.

        The hooks trace into the model's graph with no breaks, and a later ``set_active``, ``active_adapters``
        or ``set_skipped_layers`` recompiles as it should.  But by default dynamo does not guard on hooks
        (``torch._dynamo.config.skip_nnmodule_hook_guards``), so a graph compiled for another model of the same
        class without adapters (the bare base, say) is silently reused, adapters left out.  This sets that flag
        to False, process-wide, as compiling a hooked model needs; if it was on, the graphs compiled so far
        (which carry no hook guards) are discarded first (``torch._dynamo.reset()``: they recompile on next use).
        """
        import torch._dynamo

        if torch._dynamo.config.skip_nnmodule_hook_guards:
            torch._dynamo.reset()
            torch._dynamo.config.skip_nnmodule_hook_guards = False
        return torch.compile(self.model, **kwargs)

    # -- freezing -------------------------------------------------------------------
    def head_parameter_names(self) -> list[str]:
        """Parameters outside the encoder (embeddings + layers) and outside adapters: the prediction head."""
        encoder = (f"{self.base_prefix}embeddings.", f"{self.base_prefix}encoder.")
        skip = adapter_parameter_names(self.model)
        return [n for n, _ in self.model.named_parameters() if not n.startswith(encoder) and n not in skip]

    def layer_norm_parameter_names(self) -> list[str]:
        """The encoder's own LayerNorm parameters (embeddings and every layer; adapters' input LayerNorms aside)."""
        encoder = (f"{self.base_prefix}embeddings.", f"{self.base_prefix}encoder.")
        skip = adapter_parameter_names(self.model)
        return [f"{prefix}.{n}" for prefix, module in self.model.named_modules()
                if isinstance(module, nn.LayerNorm) and prefix.startswith(encoder)
                for n, _ in module.named_parameters() if f"{prefix}.{n}" not in skip]

    def pin_base_fingerprint(self) -> str:
        """Keep the base fingerprint as it is now, before the LayerNorms change (training or loading them)."""
        if self._pinned_fingerprint is None:
            self._pinned_fingerprint = self.base_fingerprint()
        return self._pinned_fingerprint

    def train_only(self, names: Iterable[str], train_head: bool, train_layer_norms: bool = False) -> list[str]:
        """Freeze everything except the named adapters (and their invertible ones) and, if asked, the head and
        the encoder's LayerNorms (Houlsby et al. 2019 train them)."""
        keep = set()
        for name in names:
            keep.update(self.fusion_tensors(name, prefixed=True) if name in self.fusions
                        else self.adapter_tensors(name, prefixed=True))
        if train_head:
            keep.update(self.head_parameter_names())
        if train_layer_norms:
            self.pin_base_fingerprint()  # adapters trained now still name the base as loaded
            keep.update(self.layer_norm_parameter_names())
        freeze_base(self.model, train_adapters=False, extra_trainable=keep.__contains__)
        return sorted(keep)

    # -- export -------------------------------------------------------------------------
    def _module_prefix(self, module: nn.Module) -> str:
        for pname, m in self.model.named_modules():
            if m is module:
                return pname + "."
        raise PlacementError("module not found in the model")

    def adapter_tensors(self, name: str, prefixed: bool = False) -> dict[str, torch.Tensor]:
        """The adapter's tensors, keyed ``layers.{i}.<param>`` (Houlsby: ``layers.{i}.attention.<param>`` and
        ``layers.{i}.ffn.<param>``) and ``invertible.<param>`` (or by model name)."""
        if name not in self.adapters:
            raise UnknownAdapterError(f"no adapter {name!r}; known: {', '.join(self.adapters) or '(none)'}")
        tensors: dict[str, torch.Tensor] = {}
        info = self.adapters[name]
        for i in info.layers:
            for site in info.config.sites:
                module = self._bank(site, i).adapters[name]
                prefix = self._module_prefix(module) if prefixed else f"layers.{i}.{SITE_PREFIX[site]}"
                tensors.update({prefix + k: v for k, v in module.named_parameters()})
        if self.adapters[name].invertible is not None:
            module = self.embeddings.madx_invertible.adapters[name]
            prefix = self._module_prefix(module) if prefixed else "invertible."
            tensors.update({prefix + k: v for k, v in module.named_parameters()})
        return tensors

    def fusion_tensors(self, name: str, prefixed: bool = False) -> dict[str, torch.Tensor]:
        """The fusion layers' tensors, keyed ``layers.{i}.<param>`` (or by model name)."""
        tensors: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.fusion_layers(name)):
            prefix = self._module_prefix(layer) if prefixed else f"layers.{i}."
            tensors.update({prefix + k: v for k, v in layer.named_parameters()})
        return tensors

    def base_fingerprint(self) -> str:
        """A fingerprint of the encoder (embeddings and layers) only, so MLM and task models of one base agree;
        the pinned one once the LayerNorms were trained or loaded (``pin_base_fingerprint``)."""
        if self._pinned_fingerprint is not None:
            return self._pinned_fingerprint
        encoder = (f"{self.base_prefix}embeddings.", f"{self.base_prefix}encoder.")
        skip = adapter_parameter_names(self.model)
        # names as a head model has them (``roberta.encoder...``), whichever class loaded the encoder: a bare
        # AutoModel's lack the prefix, and an adapter trained on DIR must load into AdapterModel.from_pretrained(DIR)
        prefix = getattr(self.base, "base_model_prefix", "") or self.base_prefix.rstrip(".")
        canonical = f"{prefix}." if prefix else ""
        return fingerprint_tensors((canonical + k[len(self.base_prefix):], v)
                                   for k, v in self.model.state_dict().items()
                                   if k.startswith(encoder) and k not in skip and "position_ids" not in k)

