"""``xling train-translation`` and ``xling translate``: adapters on transformers translation models.

    xling train-translation --model nllb/ --src-lang deu_Latn --tgt-lang eng_Latn --src-file train.de \\
        --tgt-file train.en --route-by lang --output-dir adapters/
    xling translate --model nllb/ --adapter-dir adapters/deu_Latn adapters/eng_Latn --route-by lang \\
        --input requests.tsv --output translations.txt

``--model`` is a local transformers directory (model + tokenizer) of M2M-100, NLLB-200, mBART-50 or
Marian.  train-translation writes one adapter directory per trained adapter under ``--output-dir``
(``<dir>/<name>``, the format the fairseq plugin reads too); translate reads a TSV of
``source language<TAB>target language<TAB>text`` and writes one translation per line, in input order.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from adapter_core import atomic_write_text, bapna_firat_2019, compacter_2021, houlsby_2019
from adapter_core import ADAPTER_DROP_MODES, FLAG_HELP

from .seq2seq import ROUTE_MODES

logger = logging.getLogger(__name__)

#: --adapter-placement choices: the placements the translation host offers (adapter_core.placement's names).
PLACEMENTS = ("output", "houlsby", "houlsby_cross_attention")
KINDS = ("bottleneck", "compacter")


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="local transformers directory: model and tokenizer")
    parser.add_argument("--route-by", choices=ROUTE_MODES, default="pair",
                        help="pair: one adapter per direction on both sides (Bapna & Firat 2019); lang: the source "
                             "language's adapter in the encoder, the target's in the decoder (Philip et al. 2020); "
                             "lang+pair: the pair adapter stacked on the language adapters")
    parser.add_argument("--adapter-dir", nargs="*", default=[], help="adapter directories to load first "
                        "(written by this host or exported by the fairseq plugin)")
    parser.add_argument("--force", action="store_true", help="load adapters made for another base")
    parser.add_argument("--cpu", action="store_true", help="run on CPU even with a GPU")


def add_commands(sub) -> None:
    """Add train-translation and translate to the ``xling`` subparsers."""
    train = sub.add_parser("train-translation", help="train a pair or language adapter on a transformers "
                           "translation model (M2M-100, NLLB-200, mBART-50, Marian) from parallel files")
    _common_flags(train)
    train.add_argument("--src-lang", required=True, help="source language code as the tokenizer writes it")
    train.add_argument("--tgt-lang", required=True, help="target language code")
    train.add_argument("--src-file", required=True, help="source sentences, one per line")
    train.add_argument("--tgt-file", required=True, help="target sentences, one per line (parallel to --src-file)")
    train.add_argument("--output-dir", required=True, help="where the trained adapters go (<dir>/<name>)")
    train.add_argument("--adapter-kind", choices=KINDS, default="bottleneck",
                       help="bottleneck, or compacter (Karimi Mahabadi et al. 2021; Houlsby's sites)")
    train.add_argument("--adapter-placement", choices=PLACEMENTS, default="output",
                       help="output: each layer's output; houlsby: after self-attention and FFN; "
                            "houlsby_cross_attention: also after the decoder's cross-attention")
    train.add_argument("--adapter-dim", type=int, default=64, help="bottleneck width (Bapna & Firat: 64 to 2048)")
    train.add_argument("--max-steps", type=int, default=200, help="optimizer updates")
    train.add_argument("--batch-size", type=int, default=16, help="sentence pairs per update")
    train.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    train.add_argument("--max-length", type=int, default=128, help="longest sentence in tokens (longer ones are cut)")
    train.add_argument("--seed", type=int, default=1, help="random seed")
    train.add_argument("--adapter-drop-mode", choices=ADAPTER_DROP_MODES, help=FLAG_HELP["drop_mode"])
    train.add_argument("--adapter-drop-layers", type=int, help=FLAG_HELP["drop_layers"])

    run = sub.add_parser("translate", help="translate a TSV of (source language, target language, text) with "
                         "adapters, directions mixed in each batch, output in input order")
    _common_flags(run)
    run.add_argument("--input", required=True, help="TSV: source language<TAB>target language<TAB>text")
    run.add_argument("--output", required=True, help="translations, one per line, in input order")
    run.add_argument("--batch-size", type=int, default=16, help="sentences per batch")
    run.add_argument("--beam", type=int, default=4, help="beam size (1: greedy)")
    run.add_argument("--max-new-tokens", type=int, default=128, help="longest translation in tokens")


#: The subcommands this module runs.
COMMANDS = ("train-translation", "translate")


def load_host(args):
    """The model and tokenizer of ``--model``, with the host and the ``--adapter-dir`` adapters."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from .seq2seq import Seq2SeqAdapterHost

    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"model directory not found: {args.model}")
    model = AutoModelForSeq2SeqLM.from_pretrained(args.model)
    if torch.cuda.is_available() and not args.cpu:
        model = model.cuda()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    host = Seq2SeqAdapterHost(model.eval(), route_by=args.route_by)
    for directory in args.adapter_dir:
        host.load_adapter(directory, force=args.force)
    return host, tokenizer


def adapter_config(args, hidden: int):
    placement = args.adapter_placement
    if args.adapter_kind == "compacter":
        if placement == "output":
            raise ValueError("--adapter-kind compacter sits at Houlsby's sites: use --adapter-placement houlsby")
        return compacter_2021(hidden, reduction_factor=hidden / args.adapter_dim).replace(placement=placement)
    if placement == "output":
        return bapna_firat_2019(hidden, args.adapter_dim)
    return houlsby_2019(hidden, args.adapter_dim).replace(placement=placement)


def read_parallel(tokenizer, args) -> list[dict]:
    """Tokenized sentence pairs of --src-file and --tgt-file, with the release's language tokens."""
    from .seq2seq_translate import TOKEN_FORMATS, encode, token_style

    style = token_style(tokenizer)
    with open(args.src_file, encoding="utf-8") as f:
        sources = f.read().splitlines()
    with open(args.tgt_file, encoding="utf-8") as f:
        targets = f.read().splitlines()
    if len(sources) != len(targets):
        raise ValueError(f"{args.src_file} has {len(sources)} lines but {args.tgt_file} has {len(targets)}")
    if not sources:
        raise ValueError(f"{args.src_file} is empty")
    if hasattr(tokenizer, "tgt_lang") and style != "marian":
        tokenizer.tgt_lang = args.tgt_lang
    examples = []
    for src, tgt in zip(sources, targets):
        input_ids = encode(tokenizer, src, args.src_lang, args.tgt_lang, style, args.max_length)
        labels = tokenizer(text_target=tgt, truncation=True, max_length=args.max_length)["input_ids"]
        examples.append({"input_ids": input_ids, "labels": labels})
    logger.info("%d sentence pairs (%s tokens: %s)", len(examples), style, TOKEN_FORMATS[style])
    return examples


def run(args) -> None:
    """Bad input files fail before the model loads."""
    from .cli_methods import drop_config_from_args

    if args.command == "train-translation":
        from transformers import AutoTokenizer

        from .seq2seq_train import TranslationTrainingConfig, train_direction

        drop = drop_config_from_args(args)
        data = read_parallel(AutoTokenizer.from_pretrained(args.model), args)
        host, _ = load_host(args)
        host.drop = drop
        out = Path(args.output_dir)
        training = TranslationTrainingConfig(src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                                             output_dir=str(out / "trainer"), max_steps=args.max_steps,
                                             learning_rate=args.learning_rate, batch_size=args.batch_size,
                                             seed=args.seed, cpu=args.cpu)
        for name in train_direction(host, data, training, adapter_config(args, host.hidden_size)):
            print(f"adapter {name} written to {host.save_adapter(out / name, name)}")
    else:
        from .seq2seq_translate import TranslationOptions, read_tsv, translate

        sources, targets, texts = read_tsv(args.input)
        host, tokenizer = load_host(args)
        options = TranslationOptions(batch_size=args.batch_size, num_beams=args.beam,
                                     max_new_tokens=args.max_new_tokens)
        lines = translate(host, tokenizer, texts, sources, targets, options, progress=True)
        atomic_write_text(args.output, "".join(line.replace("\n", " ") + "\n" for line in lines))
        print(f"{len(lines)} translations written to {args.output}")
