"""The real releases' layouts, from published facts (no hub access): config fields and language-token ids.

Config fields are those of the releases' ``config.json`` files (facebook/m2m100_418M, facebook/m2m100_1.2B,
facebook/nllb-200-distilled-600M, facebook/mbart-large-50-many-to-many-mmt, Helsinki-NLP/opus-mt-en-de).  Each
model is built at full size on the ``meta`` device (shapes only, no memory) and the host must map every layer.
Language-token ids are those the releases' tokenizers give (``__en__`` 128022, ``eng_Latn`` 256047, ``en_XX``
250004): the language codes follow the SentencePiece vocabulary in the order of transformers'
``FAIRSEQ_LANGUAGE_CODES`` lists, which ``xling.seq2seq_translate`` must write and read back.
"""

from __future__ import annotations

import re

import pytest
import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration, MarianConfig, MarianMTModel, MBartConfig
from transformers import MBartForConditionalGeneration
from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES as M2M_CODES
from transformers.models.mbart50.tokenization_mbart50 import FAIRSEQ_LANGUAGE_CODES as MBART50_CODES
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES as NLLB_CODES

from adapter_core import Site, bapna_firat_2019, houlsby_2019
from xling.seq2seq import LAYOUTS, Seq2SeqAdapterHost
from xling.seq2seq_translate import TOKEN_FORMATS, TOKEN_PATTERNS, languages_from_tokens

COMMON = dict(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, scale_embedding=True,
              activation_function="relu", max_position_embeddings=1024)
RELEASES = {
    "m2m100_418M": (M2M100ForConditionalGeneration, M2M100Config, dict(
        COMMON, vocab_size=128112, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096)),
    "m2m100_1.2B": (M2M100ForConditionalGeneration, M2M100Config, dict(
        COMMON, vocab_size=128112, d_model=1024, encoder_layers=24, decoder_layers=24, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=8192, decoder_ffn_dim=8192)),
    "nllb-200-distilled-600M": (M2M100ForConditionalGeneration, M2M100Config, dict(
        COMMON, vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096)),
    "mbart-large-50-many-to-many-mmt": (MBartForConditionalGeneration, MBartConfig, dict(
        COMMON, vocab_size=250054, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
        decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096)),
    "opus-mt-en-de": (MarianMTModel, MarianConfig, dict(
        vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
        activation_function="swish", scale_embedding=True, pad_token_id=58100, eos_token_id=0,
        decoder_start_token_id=58100)),
}


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_host_maps_every_layer_of_the_full_size_release(release):
    model_class, config_class, fields = RELEASES[release]
    with torch.device("meta"):
        model = model_class(config_class(**fields))
        host = Seq2SeqAdapterHost(model, route_by="lang")
        host.add_adapter("de", bapna_firat_2019(fields["d_model"], 64))
        host.add_adapter("en", houlsby_2019(fields["d_model"], 64).replace(
            placement="houlsby_cross_attention"))
    assert type(model).__name__ in LAYOUTS and LAYOUTS[type(model).__name__].norm_first == (release != "opus-mt-en-de")
    layers = fields["encoder_layers"] + fields["decoder_layers"]
    d, m = fields["d_model"], 64
    bapna = 2 * d * m + m + d + 2 * d  # down, up (with biases) and the input LayerNorm (Bapna & Firat)
    houlsby = 2 * d * m + m + d
    tensors = {k: v for k, v in host.adapter_tensors("de").items()}
    assert sum(t.numel() for t in tensors.values()) == layers * bapna
    sites = {side: [site for _, site, bank in host.site_banks(side) if "en" in bank.adapters] for side in ("encoder", "decoder")}
    assert len(sites["encoder"]) == 2 * fields["encoder_layers"] and len(sites["decoder"]) == 3 * fields["decoder_layers"]
    assert Site.CROSS_ATTENTION not in sites["encoder"]
    assert sum(t.numel() for t in host.adapter_tensors("en").values()) == (len(sites["encoder"]) + len(sites["decoder"])) * houlsby


#: style -> (transformers' language codes, id of the first code, a known (code, id), the model's vocab_size).
TOKEN_LAYOUTS = {
    "m2m100": (M2M_CODES["m2m100"], 128004, ("en", 128022), 128112),  # 128004 + 100 codes + 8 madeup words
    "nllb": (NLLB_CODES, 256001, ("eng_Latn", 256047), 256206),  # then <mask> 256203; the rows above it are padding
    "mbart50": (MBART50_CODES, 250001, ("en_XX", 250004), 250054),  # then <mask> 250053
}


class ReleaseVocabulary:
    """The language-token part of a release's vocabulary, as its tokenizer's ``get_vocab`` reports it."""

    def __init__(self, style: str):
        codes, first, _, _ = TOKEN_LAYOUTS[style]
        self.vocab = {TOKEN_FORMATS[style].format(code): first + i for i, code in enumerate(codes)}
        self.vocab.update({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "▁en": 22, "en": 23, "▁de": 24})
        self.pad_token_id = 1

    def get_vocab(self):
        return dict(self.vocab)


@pytest.mark.parametrize("style", sorted(TOKEN_LAYOUTS))
def test_language_tokens_have_the_release_ids_and_read_back(style):
    codes, first, (code, known_id), vocab_size = TOKEN_LAYOUTS[style]
    assert len(codes) == {"m2m100": 100, "nllb": 202, "mbart50": 52}[style]
    assert first + codes.index(code) == known_id
    assert first + len(codes) + (8 if style == "m2m100" else 1) <= vocab_size
    assert all(re.fullmatch(TOKEN_PATTERNS[style], TOKEN_FORMATS[style].format(c)) for c in codes)
    vocabulary = ReleaseVocabulary(style)
    target = first + len(codes) - 1
    ids = torch.tensor([[known_id, 22, 24, 2], [first, 23, 2, 1]])
    src, tgt = languages_from_tokens(vocabulary, ids, decoder_input_ids=torch.tensor([[2, target], [2, known_id]]),
                                     style=style)
    assert src == [code, codes[0]] and tgt == [codes[-1], code]
