"""Translating many directions at once through one model with adapters: ``translate(host, tokenizer, ...)``.

Each sample's languages choose its adapters (``xling.seq2seq``) and its
language tokens, as each release's tokenizer writes them:

- M2M-100 (``__de__``), NLLB-200 (``deu_Latn``) and mBART-50 (``de_DE``): the
  source language token starts the source (the tokenizer's ``src_lang``), and
  the target language token follows the decoder's start token (what
  ``forced_bos_token_id`` forces for a one-direction batch; a mixed batch gives
  each row its own as a ``decoder_input_ids`` prompt).
- Marian: multi-target models read ``>>fra<<`` at the start of the source;
  one-pair models have no language tokens (the adapters alone are routed).

``languages_from_tokens`` reads the languages back from token ids, for users
who build their own batches and call ``model.generate`` inside ``host.routed``.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .seq2seq import RoutingError, Seq2SeqAdapterHost

logger = logging.getLogger(__name__)

#: Language-token style -> how a language code is written as a token.
TOKEN_FORMATS = {"m2m100": "__{}__", "nllb": "{}", "mbart50": "{}", "marian": ">>{}<<"}
#: Style -> what a language token looks like (the codes of the releases' tokenizers), the code as group 1.
TOKEN_PATTERNS = {"m2m100": r"__([a-z]{2,3})__", "nllb": r"([a-z]{3}_[A-Z][a-z]{3})", "mbart50": r"([a-z]{2}_[A-Z]{2})",
                  "marian": r">>([A-Za-z_]{2,8})<<"}
#: Tokenizer class name (as a prefix) -> style.
TOKENIZER_STYLES = (("M2M100", "m2m100"), ("Nllb", "nllb"), ("MBart50", "mbart50"), ("MBart", "mbart50"),
                    ("Marian", "marian"))


def token_style(tokenizer) -> str:
    """The language-token style of ``tokenizer`` (from its class name)."""
    name = type(tokenizer).__name__
    for prefix, style in TOKENIZER_STYLES:
        if name.startswith(prefix):
            return style
    raise ValueError(f"no language-token style known for {name}; known styles: {', '.join(TOKEN_FORMATS)}")


def language_token_id(tokenizer, lang: str, style: str) -> int | None:
    """The id of ``lang``'s language token, or None if the vocabulary lacks it."""
    token = TOKEN_FORMATS[style].format(lang)
    token_id = tokenizer.convert_tokens_to_ids(token)
    return None if token_id is None or token_id == tokenizer.unk_token_id else int(token_id)


def languages_from_tokens(tokenizer, input_ids: torch.Tensor, decoder_input_ids: torch.Tensor | None = None,
                          forced_bos_token_id: int | None = None, style: str | None = None
                          ) -> tuple[list[str], list[str]]:
    """Each row's (source, target) language, read from its language tokens.

    Source: the first token of the row that is a language token (M2M-100, NLLB and mBART-50 tokenizers put it
    first).  Target: ``decoder_input_ids[:, 1]`` (the token after the decoder's start) or ``forced_bos_token_id``.
    """
    style = style or token_style(tokenizer)
    pattern = re.compile(TOKEN_PATTERNS[style])
    lang_of = {i: match.group(1) for t, i in tokenizer.get_vocab().items() if (match := pattern.fullmatch(t))}
    def first_language(row) -> str:
        for token in row.tolist():
            if token in lang_of:
                return lang_of[token]
            if token != tokenizer.pad_token_id:
                break
        raise RoutingError(f"row starts with token {row[0].item()}, not a language token")
    sources = [first_language(row) for row in input_ids]
    if decoder_input_ids is not None and decoder_input_ids.shape[1] > 1:
        ids = decoder_input_ids[:, 1].tolist()
    elif forced_bos_token_id is not None:
        ids = [forced_bos_token_id] * len(sources)
    else:
        raise RoutingError("give decoder_input_ids with the target language token, or forced_bos_token_id")
    unknown = [i for i in ids if i not in lang_of]
    if unknown:
        raise RoutingError(f"token {unknown[0]} is not a language token, so it names no target language")
    return sources, [lang_of[i] for i in ids]


def generate_by_language_tokens(host: Seq2SeqAdapterHost, tokenizer, input_ids: torch.Tensor, **kwargs):
    """``model.generate(input_ids, **kwargs)``, each row routed by the languages its tokens name.

    The source language is the row's language token (the tokenizer's ``src_lang``); the target is the token
    after the decoder's start in ``decoder_input_ids`` (one per row, so a batch may mix targets), or
    ``forced_bos_token_id`` (one for the batch), as transformers' translation examples pass it.
    """
    src, tgt = languages_from_tokens(tokenizer, input_ids, kwargs.get("decoder_input_ids"),
                                     kwargs.get("forced_bos_token_id"))
    return host.generate(input_ids, src_langs=src, tgt_langs=tgt, **kwargs)


@dataclass
class TranslationOptions:
    """How ``translate`` decodes."""

    # Sentences per generate() call (each call may mix directions).
    batch_size: int = 16
    # Beam size (1: greedy).
    num_beams: int = 4
    # Longest translation, in tokens.
    max_new_tokens: int = 128
    # Longest source, in tokens (longer ones are cut).
    max_source_tokens: int = 512


def encode(tokenizer, text: str, src: str, tgt: str, style: str, max_tokens: int) -> list[int]:
    """Source ids as the release's tokenizer writes them for this direction."""
    if style == "marian":
        token = TOKEN_FORMATS["marian"].format(tgt)
        if language_token_id(tokenizer, tgt, style) is not None:
            text = f"{token} {text}"
    elif hasattr(tokenizer, "src_lang"):
        tokenizer.src_lang = src
    return tokenizer(text, truncation=True, max_length=max_tokens)["input_ids"]


def decoder_prompt(host: Seq2SeqAdapterHost, tokenizer, tgt: str, style: str) -> list[int]:
    """The decoder's first tokens: its start token, then the target language token where the release has one."""
    start = int(host.model.config.decoder_start_token_id)
    if style == "marian":
        return [start]
    token = language_token_id(tokenizer, tgt, style)
    if token is None:
        raise RoutingError(f"the tokenizer has no language token for {tgt!r} ({TOKEN_FORMATS[style].format(tgt)})")
    return [start, token]


def translate(host: Seq2SeqAdapterHost, tokenizer, texts: Sequence[str], src_langs: Sequence[str],
              tgt_langs: Sequence[str], options: TranslationOptions | None = None, style: str | None = None,
              progress: bool = False) -> list[str]:
    """Translate ``texts[i]`` from ``src_langs[i]`` into ``tgt_langs[i]``, directions mixed in each batch; in order."""
    if not len(texts) == len(src_langs) == len(tgt_langs):
        raise ValueError(f"got {len(texts)} texts, {len(src_langs)} source and {len(tgt_langs)} target languages")
    options = options or TranslationOptions()
    style = style or token_style(tokenizer)
    host.route(src_langs, tgt_langs)  # every adapter named exists, before any work
    device = next(host.model.parameters()).device
    pad = int(host.model.config.pad_token_id)
    outputs: list[str] = []
    starts = range(0, len(texts), options.batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="translate", unit="batch")
    for start in starts:
        rows = slice(start, start + options.batch_size)
        src, tgt = list(src_langs[rows]), list(tgt_langs[rows])
        sources = [encode(tokenizer, t, s, g, style, options.max_source_tokens) for t, s, g in zip(texts[rows], src, tgt)]
        width = max(len(s) for s in sources)
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sources], device=device)
        prompts = torch.tensor([decoder_prompt(host, tokenizer, g, style) for g in tgt], device=device)
        with torch.no_grad():
            generated = host.generate(input_ids=input_ids, attention_mask=(input_ids != pad).long(),
                                      decoder_input_ids=prompts, src_langs=src, tgt_langs=tgt,
                                      num_beams=options.num_beams, do_sample=False,
                                      max_new_tokens=options.max_new_tokens)
        outputs.extend(tokenizer.batch_decode(generated, skip_special_tokens=True))
    return outputs


def read_tsv(path: str | Path) -> tuple[list[str], list[str], list[str]]:
    """(source languages, target languages, texts) from a TSV of ``src<TAB>tgt<TAB>text`` lines."""
    sources, targets, texts = [], [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row:
                continue
            if len(row) != 3 or not row[0] or not row[1]:
                raise ValueError(f"{path}:{number}: expected 'source language<TAB>target language<TAB>text', "
                                 f"got {len(row)} field(s)")
            sources.append(row[0])
            targets.append(row[1])
            texts.append(row[2])
    return sources, targets, texts
