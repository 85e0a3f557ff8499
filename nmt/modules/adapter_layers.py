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
"""

from __future__ import annotations

from typing import Sequence

from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase

from adapter_core import AdapterBank, AdapterConfig

from ..routing import DECODER_SLOT, ENCODER_SLOT, layer_keys


class AdapterEncoderLayer(TransformerEncoderLayerBase):
    """fairseq's encoder layer followed by a per-sample adapter (Bapna & Firat 2019)."""

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], return_fc: bool = False):
        super().__init__(cfg, return_fc=return_fc)
        self.adapter_bank = AdapterBank(adapter_config, adapter_keys, batch_dim=1)

    def forward(self, x, *args, **kwargs):
        output = super().forward(x, *args, **kwargs)
        ids, names = layer_keys(ENCODER_SLOT, type(self).__name__)
        if isinstance(output, tuple):  # (x, fc_result) with return_fc
            return (self.adapter_bank(output[0], ids, key_names=names),) + tuple(output[1:])
        return self.adapter_bank(output, ids, key_names=names)


class AdapterDecoderLayer(TransformerDecoderLayerBase):
    """fairseq's decoder layer followed by a per-sample adapter (Bapna & Firat 2019)."""

    def __init__(self, cfg, adapter_config: AdapterConfig, adapter_keys: Sequence[str], no_encoder_attn: bool = False):
        super().__init__(cfg, no_encoder_attn=no_encoder_attn)
        self.adapter_bank = AdapterBank(adapter_config, adapter_keys, batch_dim=1)

    def forward(self, x, *args, **kwargs):
        x, attn, self_attn_state = super().forward(x, *args, **kwargs)
        ids, names = layer_keys(DECODER_SLOT, type(self).__name__)
        return self.adapter_bank(x, ids, key_names=names), attn, self_attn_state
