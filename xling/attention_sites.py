"""LoRA and prefix tuning inside a transformers encoder's self-attention, without copying its forward.

``adapter_core.placement``'s attention sites, mapped onto BERT/XLM-R's
``*SelfAttention`` modules (``query``, ``key``, ``value`` projections):

- ``Site.QUERY``/``KEY``/``VALUE`` (LoRA, Hu et al. 2021): a forward hook on
  the projection (an ``nn.Linear``) replaces its output W x by
  ``adapter_core.compose`` of the active setup, each adapter reading the
  projection's input x and adding (alpha / r) B A x.  The bank is registered on
  the projection (``query.madx_adapters``), so the Trainer and checkpoints see it.
- ``Site.PREFIX`` (prefix tuning, Li & Liang 2021): the keys and values are
  reshaped into heads inside the attention's forward, so a hook on the
  projections cannot lengthen them.  The extension point is transformers'
  ``AttentionInterface``: the host registers ``prefix_tuning+<impl>`` (for the
  model's implementation, sdpa or eager), whose function prepends the active
  prefix rows to the keys and values and widens the attention mask
  (``adapter_core.prepend_prefixes``), then calls the original function; the
  mask function is the original's.  A forward pre-hook on each self-attention
  module puts that layer's active prefixes on the module for the call.  The
  model's ``config._attn_implementation`` is switched once, when the first
  prefix arrives (``set_attn_implementation``); nothing else in the config changes.
  A reparametrised prefix (Li & Liang's MLP, ``adapter_core.prefix``) shares
  its encoder across the layers (the host calls ``share_prefix_encoder``);
  ``eject_prefix_tuning`` turns it into the flat rows it makes, which is what
  ``xling train-task`` saves.

A prefix applies to the whole batch, and a ``Fuse`` is refused at both kinds of sites.
"""

from __future__ import annotations

import sys
from typing import Callable

import torch
from torch import nn

from adapter_core import (AdapterBank, Fuse, PrefixTuning, Site, compose, madx_language, prepend_prefixes,
                          setup_steps)

#: The name prefix of the attention functions registered for prefix tuning.
PREFIX_IMPLEMENTATION = "prefix_tuning+"
_PROJECTIONS = {Site.QUERY: "query", Site.KEY: "key", Site.VALUE: "value"}


class AttentionLayoutError(ValueError):
    """A layer without a BERT/XLM-R self-attention (query, key, value projections)."""


def self_attention_modules(layers) -> list[nn.Module]:
    """Each layer's ``attention.self`` module, checked to have query, key and value projections."""
    modules = []
    for i, layer in enumerate(layers):
        module = getattr(getattr(layer, "attention", None), "self", None)
        if module is None or not all(isinstance(getattr(module, p, None), nn.Linear) for p in _PROJECTIONS.values()):
            raise AttentionLayoutError(f"encoder.layer.{i}.attention.self has no query/key/value nn.Linear "
                                       "projections (LoRA and prefix tuning need BERT/XLM-R's self-attention)")
        modules.append(module)
    return modules


def _read_projection_input(stream: torch.Tensor, adapter: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x  # LoRA reads the projection's input and adds to its output


def _no_fusion(setup, bank: AdapterBank) -> None:
    """A ``Fuse`` over adapters of this site is refused (the others' fusions run at their own site)."""
    if any(isinstance(step, Fuse) and any(n in bank.adapters for n in step.names) for step in setup_steps(setup)):
        raise ValueError("AdapterFusion fuses Pfeiffer-placed adapters; LoRA and prefix-tuning sites have none")


def attention_sites(host) -> "AttentionSites":
    """The ``AttentionSites`` of a ``TransformersHost`` (``host.attention_sites``), made on first use."""
    if host.attention_sites is None:
        host.attention_sites = AttentionSites(host.model, host.layers, host.current_setup,
                                              lambda: host.skipped_layers, host._handles)
    return host.attention_sites


def eject_prefix_tuning(host, name: str) -> None:
    """Replace a reparametrised prefix ``name`` by the flat rows it makes now, in every layer (AdapterHub's
    ``eject_prefix_tuning``): the same outputs, 2 l d weights per layer, and a config with ``prefix_mlp_dim`` 0."""
    info = host.adapters[name]
    if info.config.kind != "prefix_tuning" or not info.config.prefix_mlp_dim:
        return
    for i in info.layers:
        bank = host._bank(Site.PREFIX, i)
        bank.adapters[name] = bank.adapters[name].ejected()
    info.config = info.config.replace(prefix_mlp_dim=0)


class AttentionSites:
    """Banks and hooks at the self-attention sites of a host's layers, made on first use of each site."""

    def __init__(self, model: nn.Module, layers, current_setup: Callable[[], object], skipped: Callable[[], frozenset],
                 handles: list):
        self.model = model
        self.modules = self_attention_modules(layers)
        self.current_setup, self.skipped, self.handles = current_setup, skipped, handles
        self.banks: dict[tuple[Site, int], AdapterBank] = {}

    def bank(self, site: Site, index: int) -> AdapterBank:
        """The bank of ``site`` in layer ``index`` (created and hooked on first use)."""
        key = (site, index)
        if key not in self.banks:
            module = self.modules[index]
            config = madx_language(module.query.in_features)  # the banks' default; every add gives its own
            if site == Site.PREFIX:
                self._use_prefix_attention()
                module.madx_prefixes = AdapterBank(config)
                self.handles.append(module.register_forward_pre_hook(self._prefix_hook(index, module)))
                self.handles.append(module.register_forward_hook(self._prefix_done))
                self.banks[key] = module.madx_prefixes
            else:
                projection = getattr(module, _PROJECTIONS[site])
                projection.madx_adapters = AdapterBank(config)
                self.handles.append(projection.register_forward_hook(self._projection_hook(index, projection)))
                self.banks[key] = projection.madx_adapters
        return self.banks[key]

    def _projection_hook(self, index: int, projection: nn.Module):
        def hook(module, args, output):
            if index in self.skipped():
                return None
            setup = self.current_setup()
            _no_fusion(setup, projection.madx_adapters)
            r = compose(setup, output, projection.madx_adapters.adapters, read=_read_projection_input,
                        extras=(args[0],), missing="skip")
            return None if r is output else r
        return hook

    def _prefix_hook(self, index: int, module: nn.Module):
        def hook(mod, args):
            if index in self.skipped():
                mod.madx_active_prefixes = []
                return None
            setup = self.current_setup()
            _no_fusion(setup, module.madx_prefixes)
            bank = module.madx_prefixes.adapters
            mod.madx_active_prefixes = [bank[s] for s in setup_steps(setup) if isinstance(s, str) and s in bank
                                        and isinstance(bank[s], PrefixTuning)]
            return None
        return hook

    @staticmethod
    def _prefix_done(module, args, output):
        module.madx_active_prefixes = []

    def _use_prefix_attention(self) -> None:
        """Switch the model to the registered ``prefix_tuning+<impl>`` attention function (once)."""
        config = getattr(self.model, "config", None)
        current = getattr(config, "_attn_implementation", None)
        if current is None:
            raise AttentionLayoutError(f"{type(self.model).__name__} has no config._attn_implementation: prefix "
                                       "tuning needs transformers' AttentionInterface")
        if current.startswith(PREFIX_IMPLEMENTATION):
            return
        self.model.set_attn_implementation(register_prefix_attention(current))


def register_prefix_attention(base: str) -> str:
    """Register ``prefix_tuning+<base>`` (attention and mask functions) with transformers; returns the name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    name = PREFIX_IMPLEMENTATION + base
    if name in ALL_ATTENTION_FUNCTIONS:
        return name
    if base != "eager" and base not in ALL_ATTENTION_FUNCTIONS:
        raise AttentionLayoutError(f"prefix tuning: unknown attention implementation {base!r}")

    def attention_with_prefix(module, query, key, value, attention_mask, **kwargs):
        prefixes = getattr(module, "madx_active_prefixes", None) or []
        key, value, attention_mask = prepend_prefixes(key, value, attention_mask, prefixes)
        # eager is each model file's own eager_attention_forward (the default of get_interface), the others global
        original = (sys.modules[type(module).__module__].eager_attention_forward if base == "eager"
                     else ALL_ATTENTION_FUNCTIONS[base])
        return original(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(name, attention_with_prefix)
    mask = ALL_MASK_ATTENTION_FUNCTIONS[base] if base in ALL_MASK_ATTENTION_FUNCTIONS else None
    if mask is not None:
        ALL_MASK_ATTENTION_FUNCTIONS.register(name, mask)
    return name
