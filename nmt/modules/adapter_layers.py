"""fairseq Transformer layers that carry banks of adapters at the sites their config's placement names.

This is where the ``adapter_core.placement`` sites meet fairseq, once:

- ``Site.LAYER`` (placement ``output``, the default): Bapna & Firat (2019),
  "Simple, Scalable Adaptation for Neural Machine Translation", apply one
  small residual adapter per language pair (or domain) to the layer's output,
  i.e. after the feed-forward block.  Philip et al. (2020), "Monolingual
  Adapters for Zero-Shot Neural Machine Translation", key the same module by
  language.  The layers call fairseq's own ``forward`` and route its output
  through the bank ``adapter_bank``.
- ``Site.ATTENTION`` and ``Site.FFN`` (placement ``houlsby``,
  ``--adapter-placement houlsby``): Houlsby et al. (2019), "Parameter-Efficient
  Transfer Learning for NLP", put an adapter on the attention block's output
  and one on the feed-forward block's output, each after the output projection
  (and its dropout, as in their code) and before the residual add and
  LayerNorm.  fairseq's layers make that add through ``residual_connection``,
  once per sub-layer; the override below routes the sub-layer output through
  the site's bank (``attention_adapter_bank``, ``ffn_adapter_bank``) before
  adding.  The paper's model is an encoder; in the decoder the adapter sits on
  the self-attention and the cross-attention gets none (AdapterHub's
  ``double_seq_bn`` does the same: its ``cross_adapter`` is off).
- ``Site.QUERY``/``KEY``/``VALUE`` (``--adapter-kind lora``, placements
  ``query_value`` and ``query_key_value``): LoRA (Hu et al. 2021, "LoRA:
  Low-Rank Adaptation of Large Language Models") adds (alpha / r) B A x to the
  self-attention's projections.  fairseq's ``MultiheadAttention`` normally
  hands the projection weights to torch's fused
  ``multi_head_attention_forward``, which never calls the projection modules;
  its ``skip_embed_dim_check`` switch (made for pruning) takes the path that
  calls ``q_proj``/``k_proj``/``v_proj``, so a forward hook on each adapted
  projection adds the routed update.  Self-attention only (encoder and
  decoder); the cross-attention gets none.  Prefix tuning is not offered:
  fairseq builds keys and values inside ``MultiheadAttention.forward`` with no
  hook between them and the attention product (``bias_k``/``bias_v`` append
  one shared row, not trained rows per adapter), so it would need that forward
  copied.

fairseq's tensors are T x B x C, so the banks' batch dimension is 1.  The
pretrained keys ``layers.N.*`` are unchanged; the adapters add
``layers.N.<bank>.*``.  A layer leaves all its adapters out (the base
layer's computation, and no adapter cost) when its index is below the
route's AdapterDrop count (Rücklé et al. 2021) or when ``adapter_skipped`` is
set (layer ablation and pruning at inference, ``--adapter-skip-layers``).
The route arrives as the ``adapter_route`` keyword argument, which the
encoder and decoder inject for their forward (``nmt.routing.call_kwargs``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase

from adapter_core import AdapterBank, AdapterConfig, Site, check_sites

from ..routing import RoutingError, SideRoute

#: Each site fairseq's layers host, and the attribute of the layer that holds its bank.
SITE_BANKS = {Site.LAYER: "adapter_bank", Site.ATTENTION: "attention_adapter_bank", Site.FFN: "ffn_adapter_bank",
              Site.QUERY: "query_adapter_bank", Site.KEY: "key_adapter_bank", Site.VALUE: "value_adapter_bank"}
#: The self-attention projection each LoRA site adapts.
PROJECTIONS = {Site.QUERY: "q_proj", Site.KEY: "k_proj", Site.VALUE: "v_proj"}


class _AdaptedLayer:
    """What the encoder and decoder layers share: the banks, the layer's index, and whether its adapters run."""

    def _init_adapters(self, adapter_config: AdapterConfig, adapter_keys: Sequence[str], layer_index: int,
                       key_configs: Mapping[str, AdapterConfig] | None) -> None:
        # The sites of this layer that carry adapters, in the order the forward reaches them.
        self.adapter_sites = check_sites(adapter_config.placement, tuple(SITE_BANKS), "fairseq's Transformer layer")
        for site in self.adapter_sites:
            bank = AdapterBank(adapter_config, batch_dim=1)
            for key in adapter_keys:  # each with the layer's config, or its own (lang+pair: the language adapters')
                bank.add(key, (key_configs or {}).get(key))
            setattr(self, SITE_BANKS[site], bank)
            if site in PROJECTIONS:  # LoRA: fairseq's unfused attention path calls the projections as modules
                self.self_attn.skip_embed_dim_check = True
                getattr(self.self_attn, PROJECTIONS[site]).register_forward_hook(self._projection_hook(site))
        # Position in the stack, from 0 (AdapterDrop drops the lowest layers).
        self.layer_index = layer_index
        # Set by the task for --adapter-skip-layers: this layer's adapters are left out.
        self.adapter_skipped = False
        # The sub-layer each residual_connection call of the running forward belongs to (None: no site).
        self._residual_sites = iter(())
        # The route of the running forward (its ``adapter_route`` argument).
        self._route: SideRoute | None = None

    def site_banks(self) -> list[tuple[Site, AdapterBank]]:
        """(site, bank) for every site of this layer, in forward order."""
        return [(site, getattr(self, SITE_BANKS[site])) for site in self.adapter_sites]

    def _adapt(self, x, site: Site):
        side = self._route
        if self.adapter_skipped or self.layer_index < side.dropped_layers:
            return x
        return getattr(self, SITE_BANKS[site])(x, side.plan)

    def _projection_hook(self, site: Site):
        def hook(module, args, output):  # W x + (alpha / r) B A x, each sample through its own adapter
            side = self._route
            if side is None or self.adapter_skipped or self.layer_index < side.dropped_layers:
                return None
            return getattr(self, SITE_BANKS[site])(args[0], side.plan, residual=output)
        return hook

    def _start(self, route: SideRoute | None, sites) -> None:
        """Called at the start of a forward: its route, and the sub-layers whose residual adds follow, in order."""
        if route is None:
            raise RoutingError(f"{type(self).__name__} was called without adapter_route; its encoder or decoder "
                               "passes it (call the model, not a layer)")
        self._route = route
        self._residual_sites = iter(sites)

    def residual_connection(self, x, residual):
        """fairseq's residual add; Houlsby's adapters first turn the sub-layer output h into h + A(h)."""
        site = next(self._residual_sites, None)
        if site is not None and site in self.adapter_sites:
            x = self._adapt(x, site)
        return super().residual_connection(x, residual)


class AdapterEncoderLayer(_AdaptedLayer, TransformerEncoderLayerBase):
    """fairseq's encoder layer with per-sample adapters at its placement's sites."""

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], return_fc: bool = False,
                 layer_index: int = 0, key_configs: Mapping[str, AdapterConfig] | None = None):
        super().__init__(cfg, return_fc=return_fc)
        self._init_adapters(adapter_config, adapter_keys, layer_index, key_configs)

    def forward(self, x, *args, adapter_route: SideRoute | None = None, **kwargs):
        self._start(adapter_route, (Site.ATTENTION, Site.FFN))
        output = super().forward(x, *args, **kwargs)
        if Site.LAYER not in self.adapter_sites:
            return output
        if isinstance(output, tuple):  # (x, fc_result) with return_fc
            return (self._adapt(output[0], Site.LAYER),) + tuple(output[1:])
        return self._adapt(output, Site.LAYER)


class AdapterDecoderLayer(_AdaptedLayer, TransformerDecoderLayerBase):
    """fairseq's decoder layer with per-sample adapters at its placement's sites."""

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], no_encoder_attn: bool = False,
                 layer_index: int = 0, key_configs: Mapping[str, AdapterConfig] | None = None):
        super().__init__(cfg, no_encoder_attn=no_encoder_attn)
        self._init_adapters(adapter_config, adapter_keys, layer_index, key_configs)

    def forward(self, x, *args, adapter_route: SideRoute | None = None, **kwargs):
        encoder_out = args[0] if args else kwargs.get("encoder_out")
        cross_attention = self.encoder_attn is not None and encoder_out is not None  # as fairseq's forward decides
        self._start(adapter_route, (Site.ATTENTION, None, Site.FFN) if cross_attention else (Site.ATTENTION, Site.FFN))
        x, attn, self_attn_state = super().forward(x, *args, **kwargs)
        if Site.LAYER in self.adapter_sites:
            x = self._adapt(x, Site.LAYER)
        return x, attn, self_attn_state
