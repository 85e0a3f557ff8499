"""fairseq Transformer layers with a bank of bottleneck adapters after the feed-forward block.

Bapna & Firat (2019), "Simple, Scalable Adaptation for Neural Machine
Translation": every encoder and decoder layer gets one small residual
adapter per language pair (or domain), applied to the layer's output, i.e.
after the feed-forward block.  Philip et al. (2020), "Monolingual Adapters
for Zero-Shot Neural Machine Translation", use the same module keyed by
language.  The layers below call fairseq's own ``forward`` and then route
the output through an ``adapter_core.AdapterBank`` (fairseq's tensors are
T x B x C, so the bank's batch dimension is 1).  The pretrained keys
``layers.N.*`` are unchanged; the adapters add ``layers.N.adapter_bank.*``.

A layer leaves its adapter out (the base layer's output passes unchanged,
and the adapter costs nothing) when its index is below the route's
AdapterDrop count (Rücklé et al. 2021) or when ``adapter_skipped`` is set
(layer ablation and pruning at inference, ``--adapter-skip-layers``).
"""

from __future__ import annotations

from typing import Sequence

from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase

from adapter_core import AdapterBank, AdapterConfig

from ..routing import DECODER_SLOT, ENCODER_SLOT, layer_keys


class _AdaptedLayer:
    """What the encoder and decoder layers share: the bank, the layer's index, and whether its adapter runs."""

    slot: str

    def _init_adapters(self, adapter_config: AdapterConfig, adapter_keys: Sequence[str], layer_index: int) -> None:
        self.adapter_bank = AdapterBank(adapter_config, adapter_keys, batch_dim=1)
        # Position in the stack, from 0 (AdapterDrop drops the lowest layers).
        self.layer_index = layer_index
        # Set by the task for --adapter-skip-layers: this layer's adapters are left out.
        self.adapter_skipped = False

    def _adapt(self, x):
        side = layer_keys(self.slot, type(self).__name__)
        if self.adapter_skipped or self.layer_index < side.dropped_layers:
            return x
        return self.adapter_bank(x, side.plan)


class AdapterEncoderLayer(_AdaptedLayer, TransformerEncoderLayerBase):
    """fairseq's encoder layer followed by a per-sample adapter (Bapna & Firat 2019)."""

    slot = ENCODER_SLOT

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], return_fc: bool = False,
                 layer_index: int = 0):
        super().__init__(cfg, return_fc=return_fc)
        self._init_adapters(adapter_config, adapter_keys, layer_index)

    def forward(self, x, *args, **kwargs):
        output = super().forward(x, *args, **kwargs)
        if isinstance(output, tuple):  # (x, fc_result) with return_fc
            return (self._adapt(output[0]),) + tuple(output[1:])
        return self._adapt(output)


class AdapterDecoderLayer(_AdaptedLayer, TransformerDecoderLayerBase):
    """fairseq's decoder layer followed by a per-sample adapter (Bapna & Firat 2019)."""

    slot = DECODER_SLOT

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], no_encoder_attn: bool = False,
                 layer_index: int = 0):
        super().__init__(cfg, no_encoder_attn=no_encoder_attn)
        self._init_adapters(adapter_config, adapter_keys, layer_index)

    def forward(self, x, *args, **kwargs):
        x, attn, self_attn_state = super().forward(x, *args, **kwargs)
        return self._adapt(x), attn, self_attn_state
