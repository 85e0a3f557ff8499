"""Architectures of ``adapter_transformer`` whose base shapes match published fairseq checkpoints.

Each one sets the same defaults as the fairseq architecture its checkpoint
was trained with, so the checkpoint's tensors load unchanged; the adapter
options keep their defaults (``nmt.config.AdapterModelConfig``).
"""

from __future__ import annotations

from fairseq.models import register_model_architecture
from fairseq.models.transformer.transformer_legacy import (base_architecture, transformer_vaswani_wmt_en_de_big,
                                                           transformer_wmt_en_de_big)

from .adapter_transformer import fill_adapter_defaults


@register_model_architecture("adapter_transformer", "adapter_transformer")
def adapter_transformer(args):
    """fairseq ``transformer`` (base): d=512, FFN 2048, 8 heads, 6+6 layers, post-norm."""
    base_architecture(args)
    fill_adapter_defaults(args)


@register_model_architecture("adapter_transformer", "adapter_transformer_big")
def adapter_transformer_big(args):
    """fairseq ``transformer_vaswani_wmt_en_de_big``: d=1024, FFN 4096, 16 heads, 6+6 layers, post-norm."""
    transformer_vaswani_wmt_en_de_big(args)
    fill_adapter_defaults(args)


@register_model_architecture("adapter_transformer", "adapter_m2m100_418m")
def adapter_m2m100_418m(args):
    """M2M-100 418M (Fan et al. 2021; fairseq examples/m2m_100, trained as ``transformer_wmt_en_de_big``
    with 12+12 layers): d=1024, FFN 4096, 16 heads, pre-norm, shared embeddings, sinusoidal positions.
    The same numbers are in Hugging Face's ``facebook/m2m100_418M`` config (d_model 1024, ffn_dim 4096).
    The checkpoint also records LayerDrop 0.05 (M2M100Config's encoder_layerdrop); it only matters in
    training and is left at 0 here, so that no layer carrying adapters is skipped.  Checked against fairseq's
    own configuration by tests/nmt/test_checkpoint_formats.py."""
    args.encoder_layers = getattr(args, "encoder_layers", 12)
    args.decoder_layers = getattr(args, "decoder_layers", 12)
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.share_all_embeddings = getattr(args, "share_all_embeddings", True)
    transformer_wmt_en_de_big(args)
    fill_adapter_defaults(args)


@register_model_architecture("adapter_transformer", "adapter_m2m100_1_2b")
def adapter_m2m100_1_2b(args):
    """M2M-100 1.2B (fairseq examples/m2m_100): as 418M but FFN 8192 and 24+24 layers
    (Hugging Face ``facebook/m2m100_1.2B``: encoder_ffn_dim 8192, encoder_layers 24)."""
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 8192)
    args.decoder_ffn_embed_dim = getattr(args, "decoder_ffn_embed_dim", 8192)
    args.encoder_layers = getattr(args, "encoder_layers", 24)
    args.decoder_layers = getattr(args, "decoder_layers", 24)
    adapter_m2m100_418m(args)


@register_model_architecture("adapter_transformer", "adapter_mbart50")
def adapter_mbart50(args):
    """mBART-50 fine-tuned for translation (Tang et al. 2020; mbart50.ft.{nn,1n,n1}), fairseq ``mbart_large``
    shapes: d=1024, FFN 4096, 16 heads, 12+12 layers, learned positions (1024), LayerNorm on embeddings,
    scaled and shared embeddings; pre-norm with --encoder-normalize-before --decoder-normalize-before
    (fairseq examples/multilingual/README.md).  ReLU: Hugging Face's
    convert_mbart_original_checkpoint_to_pytorch.py sets activation_function = "relu" for a fine-tuned
    mBART-50 (--mbart_50 --finetuned).  The pre-trained denoising model (mbart50.pretrained) uses GELU:
    pass --activation-fn gelu for it.  Language tokens: --lang-tok-style mbart ([en_XX], plus <mask>)."""
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 1024)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 4096)
    args.encoder_layers = getattr(args, "encoder_layers", 12)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 16)
    args.decoder_layers = getattr(args, "decoder_layers", 12)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 16)
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.encoder_learned_pos = getattr(args, "encoder_learned_pos", True)
    args.decoder_learned_pos = getattr(args, "decoder_learned_pos", True)
    args.max_source_positions = getattr(args, "max_source_positions", 1024)
    args.max_target_positions = getattr(args, "max_target_positions", 1024)
    args.layernorm_embedding = getattr(args, "layernorm_embedding", True)
    args.activation_fn = getattr(args, "activation_fn", "relu")  # gelu for the pre-trained mbart50 (see above)
    args.share_all_embeddings = getattr(args, "share_all_embeddings", True)
    args.share_decoder_input_output_embed = getattr(args, "share_decoder_input_output_embed", True)
    args.no_scale_embedding = getattr(args, "no_scale_embedding", False)
    base_architecture(args)
    fill_adapter_defaults(args)
