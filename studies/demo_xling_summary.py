"""The MAD-X section of the demo's README, from ``REPORT_DIR/xling.json`` (written by recipes/demo_xling.sh).

    from studies.demo_xling_summary import xling_markdown
    lines = xling_markdown(Path("reports/demo"))

    python -m studies.demo_xling_summary reports/demo     # prints the lines

Every table gives mean ± std over seeds for each row (majority baseline,
task adapter without the swap, MAD-X, full fine-tuning), each language and
the average over the target languages, followed by the verdicts (does the
average beat the baseline by more than the seed spread, does the swap help).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from studies.xling_comparison_report import markdown_lines


def xling_markdown(report_dir: str | Path) -> list[str]:
    """Markdown lines of the MAD-X section; a one-line note when ``xling.json`` is missing or not ours."""
    path = Path(report_dir) / "xling.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        return [f"MAD-X results unavailable: cannot read {path} ({err})."]
    if not isinstance(report, dict) or not isinstance(report.get("tasks"), dict):
        return [f"MAD-X results unavailable: {path} has no 'tasks' (not written by recipes/demo_xling.sh)."]
    lines = ["## MAD-X on a real multilingual encoder (multilingual-e5-small)", ""]
    if report.get("setup"):
        lines += [report["setup"], ""]
    head = report.get("mlm_head")
    if head:
        lines += [f"MLM head (trained once, body frozen, {head['steps']} steps): held-out masked-token accuracy "
                  f"{head['before']['accuracy']:.1f}% → {head['after']['accuracy']:.1f}%.", ""]
    lines += language_adapter_lines(report.get("language_adapters") or {})
    if report.get("timing"):
        lines += [report["timing"], ""]
    elif report.get("seconds"):
        lines += [f"This part took {report['seconds'] // 60} min {report['seconds'] % 60} s on "
                  f"{report.get('threads') or '?'} CPU thread(s).", ""]
    lines += markdown_lines(report["tasks"])
    lines += ["Rows: majority = most frequent training label (QA: a random span of the median answer length; names: "
              "capitalised words); bare task = task adapter without a language adapter; "
              "no swap = task adapter over the English language adapter; MAD-X = the same task adapter over the "
              "target language's adapter and invertible adapter; full = every weight fine-tuned at the same steps. "
              "Per-language bar charts: [`xling/report.md`](xling/report.md).", ""]
    return lines


def language_adapter_lines(languages: dict) -> list[str]:
    """The held-out MLM loss of each language's text under every setting (``xling lang-mlm-loss``), and whether its
    own adapter is below the others by the margin (the check of a language adapter that learned its language)."""
    if not languages:
        return []
    settings = list(dict.fromkeys(name for scores in languages.values() for name in scores.get("settings", {})))
    lines = ["Language adapters: held-out MLM loss (nats) of each language's text under each setting; trained = its "
             "own adapter below every other setting by more than the margin.", "",
             "| text | " + " | ".join(settings) + " | own adapter trained |",
             "|---|" + "---:|" * len(settings) + "---|"]
    for lang, scores in languages.items():
        cells = [f"{scores['settings'][name]['loss']:.3f}" if name in scores.get("settings", {}) else "–"
                 for name in settings]
        verdict = (f"{'PASS' if scores.get('passes') else 'FAIL'} (margin {scores.get('margin', 0):.2f})"
                   if "passes" in scores else "–")
        lines.append(f"| {lang} | " + " | ".join(cells) + f" | {verdict} |")
    return lines + [""]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m studies.demo_xling_summary REPORT_DIR")
    print("\n".join(xling_markdown(sys.argv[1])))
