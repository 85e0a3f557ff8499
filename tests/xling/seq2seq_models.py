"""Tiny random translation models of each architecture the seq2seq host supports, built from their configs.

Weights are drawn wider than the configs' defaults (init_std 0.3) and the adapters' weights are randomised, so
that different adapters (and a wrong route) give different translations: a routing bug cannot hide behind a
model that emits the same token whatever it reads.
"""

from __future__ import annotations

import torch
from transformers import (M2M100Config, M2M100ForConditionalGeneration, MarianConfig, MarianMTModel, MBartConfig,
                          MBartForConditionalGeneration)

SIZES = dict(vocab_size=64, d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
             decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
             init_std=0.3, dropout=0.1)

#: name -> a function building the tiny model (eval mode).
ARCHITECTURES = {
    # M2M-100 (Fan et al. 2021): pre-norm, sinusoidal positions, scaled embeddings, eos starts the decoder.
    "m2m100": lambda: M2M100ForConditionalGeneration(M2M100Config(**SIZES, pad_token_id=1, bos_token_id=0,
                                                                  eos_token_id=2, decoder_start_token_id=2)),
    # NLLB-200 (NLLB Team 2022) is an M2M-100 model; its release has scale_embedding and relu too.
    "nllb": lambda: M2M100ForConditionalGeneration(M2M100Config(**SIZES, pad_token_id=1, bos_token_id=0,
                                                                eos_token_id=2, decoder_start_token_id=2,
                                                                scale_embedding=True, activation_function="relu")),
    # mBART-50 (Tang et al. 2020): pre-norm, learned positions, LayerNorm on the embeddings.
    "mbart50": lambda: MBartForConditionalGeneration(MBartConfig(**SIZES, pad_token_id=1, bos_token_id=0,
                                                                 eos_token_id=2, decoder_start_token_id=2)),
    # Marian (Junczys-Dowmunt et al. 2018): post-norm, the pad token starts the decoder.
    "marian": lambda: MarianMTModel(MarianConfig(**SIZES, pad_token_id=63, eos_token_id=0,
                                                 decoder_start_token_id=63, forced_eos_token_id=0)),
}


def tiny_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return ARCHITECTURES[name]().eval()


def randomise_adapters(model, seed: int = 1, std: float = 0.5) -> None:
    """Give every adapter tensor random values (their inits start at or near the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "seq2seq_adapters" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def source_batch(model, rows: int = 4, length: int = 7, seed: int = 2) -> torch.Tensor:
    """Random source ids (no special tokens), ending with eos as the tokenizers write them."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 60, (rows, length), generator=generator)
    ids[:, -1] = model.config.eos_token_id
    return ids


def tiny_nllb_tokenizer():
    """An NllbTokenizer over single characters (no merges) plus NLLB-200's 202 language tokens and <mask>."""
    import string

    from transformers import NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in ["▁"] + list(string.ascii_letters + ".,!?'"):
        vocab[char] = len(vocab)
    return NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn")


def save_tiny_nllb(directory, seed: int = 0):
    """A local NLLB-style directory (model + tokenizer), as ``from_pretrained`` reads the real release."""
    tokenizer = tiny_nllb_tokenizer()
    torch.manual_seed(seed)
    sizes = {**SIZES, "vocab_size": len(tokenizer), "max_position_embeddings": 128}
    model = M2M100ForConditionalGeneration(M2M100Config(**sizes, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                        decoder_start_token_id=2, scale_embedding=True))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
