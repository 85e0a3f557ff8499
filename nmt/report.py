"""``nmt report``: BLEU, chrF++ and spBLEU per system and direction, from fairseq-generate outputs.

Input (choose one; both may be combined):

* ``--system NAME=DIR`` (repeatable): ``DIR`` holds one fairseq-generate output
  per direction, named ``generate-<src>-<tgt>.txt`` (language codes contain
  no '-', e.g. ``generate-en-zh_cn.txt``);
* ``--spec FILE.json``: ``{"systems": {NAME: DIR or {"<src>-<tgt>": FILE}},
  "meta": {NAME: {key: value}}}``; ``meta`` is copied into every entry of that
  system (trainable/total parameters, checkpoint paths, ...).

From each generate output the detokenised ``D-`` line is used (else ``H-``),
first hypothesis per id, ordered by id; a leading language tag ``__xx__`` is
removed.  References and sources come from ``--raw-dir`` (the plain-text
test set, ``test.<src>-<tgt>.<lang>`` or ``test.<tgt>-<src>.<lang>``, line
``id`` for sample ``id``) when given, else from the ``T-``/``S-`` lines.

Output in ``--output-dir``: ``nmt.json`` (``{system: {direction: {bleu, chrf,
spbleu, *_signature, hyp, ref, src, zero_shot, ...}}}``, including the
``copy`` baseline whose hypothesis is the source), ``nmt.md`` (systems as
columns, directions as rows), ``bleu_heatmap.png`` (source x target BLEU, one
panel per system), and the scored files: ``hyp/<system>/<direction>.txt``,
``ref/<direction>.txt``, ``src/<direction>.txt``.

Scores are sacreBLEU's with its default settings (13a; ``zh`` for Chinese
targets, ``char`` for Japanese and Korean), so ``sacrebleu ref -i hyp`` on the written
files gives the same BLEU.  spBLEU (``--spm-model``): sacreBLEU's flores200
tokenizer downloads its model, so here the hypotheses and references are cut
into pieces with the given local SentencePiece model (``sentencepiece``,
exactly as sacreBLEU's tokenizer does) and scored with ``tokenize='none'``;
the signature says ``tok:spm-<file name>``.  With the real
``flores200sacrebleuspm`` model this equals ``sacrebleu -tok flores200``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

from adapter_core.io import atomic_write_json, atomic_write_text

from .inspect_model import pyplot, save_figure

logger = logging.getLogger("nmt.report")

COPY_SYSTEM = "copy"
GENERATE_NAME = re.compile(r"^generate-([A-Za-z0-9_@]+)-([A-Za-z0-9_@]+)\.txt$")
GENERATE_LINE = re.compile(r"^([STHD])-(\d+)\t(.*)$")
LANG_TAG = re.compile(r"^__[A-Za-z0-9_@-]+__\s*")
# sacreBLEU's own tokenizers for targets without spaces (its mecab ones need extra packages: char instead)
OWN_TOKENIZER = {"zh": "zh", "ja": "char", "ko": "char"}


class ReportError(ValueError):
    """Bad report input; the message names the file and what is wrong."""


def parse_generate(path: Path) -> dict[str, dict[int, str]]:
    """``{"S"|"T"|"H"|"D": {id: text}}`` from a fairseq-generate output (first hypothesis per id)."""
    found: dict[str, dict[int, str]] = {"S": {}, "T": {}, "H": {}, "D": {}}
    try:
        text = Path(path).read_text("utf-8")
    except UnicodeDecodeError as err:
        raise ReportError(f"{path}: invalid UTF-8 at byte {err.start}") from None
    for line in text.split("\n"):
        match = GENERATE_LINE.match(line)
        if not match:
            continue
        kind, sample, rest = match.group(1), int(match.group(2)), match.group(3)
        if kind in "HD":
            parts = rest.split("\t", 1)  # score, then text
            rest = parts[1] if len(parts) == 2 else ""
        found[kind].setdefault(sample, rest)
    if not found["H"] and not found["D"]:
        raise ReportError(f"{path}: no H-/D- lines; is this a fairseq-generate output?")
    return found


def _raw_side(raw_dir: Path, src: str, tgt: str, lang: str) -> Path | None:
    for a, b in ((src, tgt), (tgt, src)):
        path = Path(raw_dir) / f"test.{a}-{b}.{lang}"
        if path.exists():
            return path
    return None


def text_lines(path: Path) -> list[str]:
    """The lines of a text file, split on "\\n" only; a last line without a final newline still counts."""
    text = Path(path).read_bytes().decode("utf-8")  # split on "\n" only: read_text would also split on a lone CR
    lines = text.split("\n")
    return lines[:-1] if text.endswith("\n") else lines


def load_direction(path: Path, src: str, tgt: str, raw_dir: Path | None) -> dict[str, list[str]]:
    """Hypotheses, references and sources of one generate output, ordered by sample id."""
    found = parse_generate(path)
    hyps = found["D"] or found["H"]
    ids = sorted(hyps)
    if raw_dir is not None:
        sides = {}
        for lang in (src, tgt):
            raw = _raw_side(raw_dir, src, tgt, lang)
            if raw is None:
                raise ReportError(f"{raw_dir}: no test.{src}-{tgt}.{lang} nor test.{tgt}-{src}.{lang} for {path}")
            sides[lang] = text_lines(raw)
        if len(sides[src]) != len(sides[tgt]):
            raise ReportError(f"{_raw_side(raw_dir, src, tgt, src)} has {len(sides[src])} lines but "
                              f"{_raw_side(raw_dir, src, tgt, tgt)} has {len(sides[tgt])}: not a parallel test set")
        if ids and ids[-1] >= len(sides[tgt]):
            raise ReportError(f"{path}: sample id {ids[-1]} but {_raw_side(raw_dir, src, tgt, tgt)} "
                              f"has {len(sides[tgt])} lines")
        # Score the whole test set: a sentence fairseq-generate skipped counts as an
        # empty hypothesis (and is counted), so systems are compared on the same segments.
        missing = [i for i in range(len(sides[tgt])) if i not in hyps]
        ids = list(range(len(sides[tgt])))
        hyps = {**{i: "" for i in missing}, **hyps}
        return {"hyp": [LANG_TAG.sub("", hyps[i]) for i in ids], "ref": sides[tgt], "src": sides[src],
                "missing": missing}
    else:
        missing = [i for i in ids if i not in found["T"]]
        if missing:
            raise ReportError(f"{path}: no T- (reference) line for sample(s) {missing[:5]}; pass --raw-dir")
        refs, sources = [found["T"][i] for i in ids], [found["S"].get(i, "") for i in ids]
    return {"hyp": [LANG_TAG.sub("", hyps[i]) for i in ids], "ref": refs, "src": sources, "missing": []}


def _target_tokenizer(tgt: str) -> str:
    return OWN_TOKENIZER.get(tgt.split("_")[0].lower(), "13a")


class SpmSplitter:
    """Cut text into SentencePiece pieces, as sacreBLEU's flores200 tokenizer does, from a local model."""

    def __init__(self, model_path: Path):
        import sentencepiece as spm

        self.processor = spm.SentencePieceProcessor(model_file=str(model_path))
        digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()[:8]
        self.name = f"spm-{Path(model_path).name}@{digest}"

    def __call__(self, lines: list[str]) -> list[str]:
        return [" ".join(self.processor.encode(line, out_type=str)) for line in lines]


def score(hyps: list[str], refs: list[str], tgt: str, splitter: SpmSplitter | None = None) -> dict:
    """BLEU, chrF++ (and spBLEU) with their full sacreBLEU signatures."""
    bleu = BLEU(tokenize=_target_tokenizer(tgt))
    chrf = CHRF(word_order=2)
    result = {"bleu": round(bleu.corpus_score(hyps, [refs]).score, 4), "bleu_signature": str(bleu.get_signature()),
              "chrf": round(chrf.corpus_score(hyps, [refs]).score, 4), "chrf_signature": str(chrf.get_signature()),
              "segments": len(hyps)}
    if splitter is not None:
        spbleu = BLEU(tokenize="none", force=True)
        result["spbleu"] = round(spbleu.corpus_score(splitter(hyps), [splitter(refs)]).score, 4)
        result["spbleu_signature"] = str(spbleu.get_signature()).replace("tok:none", f"tok:{splitter.name}")
    return result


def _split_direction(direction: str) -> tuple[str, str]:
    parts = direction.split("-")
    if len(parts) != 2 or not all(parts):
        raise ReportError(f"direction {direction!r} must be <src>-<tgt> with codes free of '-' (e.g. pt_br)")
    return parts[0], parts[1]


def collect_systems(system_args: list[str], spec: dict) -> tuple[dict[str, dict[str, Path]], dict]:
    entries = dict(spec.get("systems", {}))
    for item in system_args:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise ReportError(f"--system {item!r}: expected NAME=DIR")
        entries[name] = folder
    if not entries:
        raise ReportError("no systems: give --system NAME=DIR or --spec FILE.json")
    systems: dict[str, dict[str, Path]] = {}
    for name, where in entries.items():
        if name == COPY_SYSTEM:
            raise ReportError(f"system name {COPY_SYSTEM!r} is reserved for the copy baseline")
        if isinstance(where, dict):
            systems[name] = {direction: Path(path) for direction, path in where.items()}
            continue
        folder = Path(where)
        if not folder.is_dir():
            raise ReportError(f"system {name}: {folder} is not a directory")
        files = {f"{m.group(1)}-{m.group(2)}": p for p in sorted(folder.iterdir()) if (m := GENERATE_NAME.match(p.name))}
        if not files:
            raise ReportError(f"system {name}: no generate-<src>-<tgt>.txt files in {folder}")
        systems[name] = files
    return systems, spec.get("meta", {})


def build_report(systems: dict[str, dict[str, Path]], out_dir: Path, raw_dir: Path | None = None,
                 supervised: set[str] | None = None, spm_model: Path | None = None, copy_baseline: bool = True,
                 meta: dict | None = None) -> dict:
    """Score every (system, direction); write JSON, Markdown, PNG and the scored files; return the JSON."""
    out_dir = Path(out_dir)
    splitter = SpmSplitter(spm_model) if spm_model else None
    report: dict[str, dict[str, dict]] = {}
    references: dict[str, dict[str, list[str]]] = {}
    for name, directions in systems.items():
        for direction, path in sorted(directions.items()):
            src, tgt = _split_direction(direction)
            if not Path(path).exists():
                raise ReportError(f"system {name}, {direction}: {path} does not exist")
            data = load_direction(Path(path), src, tgt, raw_dir)
            if direction in references and references[direction]["ref"] != data["ref"]:
                raise ReportError(f"{path}: its references differ from another system's for {direction}; "
                                  "were the systems run on the same test set?")
            references.setdefault(direction, data)
            hyp_path = out_dir / "hyp" / name / f"{direction}.txt"
            atomic_write_text(hyp_path, "".join(line + "\n" for line in data["hyp"]))
            entry = score(data["hyp"], data["ref"], tgt, splitter)
            extra = (meta or {}).get(name, {})
            clash = sorted(set(extra) & (set(entry) | {"generate_output", "hyp", "missing_hypotheses"}))
            if clash:
                raise ReportError(f"--spec meta of system {name} sets {', '.join(clash)}, which the report computes")
            entry.update(generate_output=str(path), hyp=str(hyp_path), missing_hypotheses=len(data["missing"]),
                         **extra)
            if data["missing"]:
                logger.warning("%s: fairseq-generate skipped %d of %d test sentences (ids %s); they count as empty",
                               path, len(data["missing"]), len(data["ref"]), data["missing"][:5])
            report.setdefault(name, {})[direction] = entry
    for direction, data in sorted(references.items()):
        src, tgt = _split_direction(direction)
        for kind in ("ref", "src"):
            atomic_write_text(out_dir / kind / f"{direction}.txt", "".join(line + "\n" for line in data[kind]))
        if copy_baseline:
            hyp_path = out_dir / "hyp" / COPY_SYSTEM / f"{direction}.txt"
            atomic_write_text(hyp_path, "".join(line + "\n" for line in data["src"]))
            report.setdefault(COPY_SYSTEM, {})[direction] = {**score(data["src"], data["ref"], tgt, splitter),
                                                             "hyp": str(hyp_path)}
    for entries in report.values():
        for direction, entry in entries.items():
            entry["ref"] = str(out_dir / "ref" / f"{direction}.txt")
            entry["src"] = str(out_dir / "src" / f"{direction}.txt")
            entry["zero_shot"] = None if supervised is None else direction not in supervised
    atomic_write_json(out_dir / "nmt.json", report)
    atomic_write_text(out_dir / "nmt.md", markdown(report, supervised is not None))
    heatmap(report, out_dir / "bleu_heatmap.png")
    return report


def markdown(report: dict, marked: bool) -> str:
    systems = [s for s in report if s != COPY_SYSTEM] + ([COPY_SYSTEM] if COPY_SYSTEM in report else [])
    directions = sorted({d for entries in report.values() for d in entries},
                        key=lambda d: (any(e.get(d, {}).get("zero_shot") for e in report.values()), d))
    has_sp = any("spbleu" in e for entries in report.values() for e in entries.values())
    lines = ["# Translation quality (sacreBLEU)", "",
             "Cells: BLEU / chrF++" + (" / spBLEU" if has_sp else "") + f"; `{COPY_SYSTEM}` copies the source "
             "as its hypothesis (the floor every system must clear).", "",
             "| direction | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    for direction in directions:
        zero = any(report[s].get(direction, {}).get("zero_shot") for s in systems)
        label = f"{direction} (zero-shot)" if zero else (f"{direction} (supervised)" if marked else direction)
        cells = []
        for system in systems:
            entry = report[system].get(direction)
            if entry is None:
                cells.append("–")
                continue
            cell = f"{entry['bleu']:.1f} / {entry['chrf']:.1f}"
            cells.append(cell + (f" / {entry['spbleu']:.1f}" if "spbleu" in entry else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    signatures = {}
    for entries in report.values():
        for entry in entries.values():
            for key in ("bleu_signature", "chrf_signature", "spbleu_signature"):
                if key in entry:
                    signatures.setdefault(entry[key], key.split("_")[0])
    lines += ["", "Signatures:", ""] + [f"- {kind}: `{sig}`" for sig, kind in signatures.items()]
    return "\n".join(lines) + "\n"


def heatmap(report: dict, path: Path) -> None:
    """Source x target BLEU, one panel per system, written atomically."""
    plt = pyplot()

    langs = sorted({lang for entries in report.values() for d in entries for lang in _split_direction(d)})
    systems = list(report)
    fig, axes = plt.subplots(1, len(systems), figsize=(1.2 + 0.55 * len(langs) * len(systems) + len(systems),
                                                         1.5 + 0.5 * len(langs)), squeeze=False)
    for ax, system in zip(axes[0], systems):
        grid = [[float("nan")] * len(langs) for _ in langs]
        for direction, entry in report[system].items():
            src, tgt = _split_direction(direction)
            grid[langs.index(src)][langs.index(tgt)] = entry["bleu"]
        image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=max(1.0, max(
            (e["bleu"] for entries in report.values() for e in entries.values()), default=1.0)))
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if value == value:
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", color="white", fontsize=7)
        ax.set_xticks(range(len(langs)), langs, rotation=90, fontsize=7)
        ax.set_yticks(range(len(langs)), langs, fontsize=7)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        ax.set_title(system, fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="BLEU")
    save_figure(fig, path)


def _supervised(text: str | None) -> set[str] | None:
    if text is None:
        return None
    if Path(text).is_file():
        text = Path(text).read_text("utf-8")
    return {part.strip() for part in text.replace("\n", ",").split(",") if part.strip()}


def main(argv: list[str] | None = None) -> int:
    from .cli import verb_parser

    parser = verb_parser("report", epilog=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", action="append", default=[], help="NAME=DIR of generate-<src>-<tgt>.txt files")
    parser.add_argument("--spec", type=Path, help="JSON: {systems: {NAME: DIR or {dir: file}}, meta: {...}}")
    parser.add_argument("--raw-dir", type=Path, help="plain-text test sets (test.<src>-<tgt>.<lang>)")
    parser.add_argument("--supervised", help="comma-separated directions trained on, or a file (lang_pairs.txt); "
                                             "the rest are marked zero-shot")
    parser.add_argument("--spm-model", type=Path, help="local SentencePiece model for spBLEU (flores200's)")
    parser.add_argument("--no-copy-baseline", action="store_true")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="where nmt.json, nmt.md, bleu_heatmap.png and hyp/, ref/, src/ go")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text("utf-8")) if args.spec else {}
        systems, meta = collect_systems(args.system, spec)
        report = build_report(systems, args.output_dir, args.raw_dir, _supervised(args.supervised), args.spm_model,
                              not args.no_copy_baseline, meta)
    except json.JSONDecodeError as err:
        print(f"nmt report: error: {args.spec}:{err.lineno}: invalid JSON ({err.msg})", file=sys.stderr)
        return 2
    except (ReportError, OSError) as err:
        print(f"nmt report: error: {err}", file=sys.stderr)
        return 2
    print(f"nmt report: {sum(len(v) for v in report.values())} scores (sacrebleu {sacrebleu.__version__}) -> "
          f"{args.output_dir / 'nmt.md'}, {args.output_dir / 'nmt.json'}, {args.output_dir / 'bleu_heatmap.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
