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

from studies.xling_comparison import markdown_lines


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
    if report.get("timing"):
        lines += [report["timing"], ""]
    elif report.get("seconds"):
        lines += [f"This part took {report['seconds'] // 60} min {report['seconds'] % 60} s on "
                  f"{report.get('threads') or '?'} CPU thread(s).", ""]
    lines += markdown_lines(report["tasks"])
    lines += ["Rows: majority = most frequent training label (QA: a random span of the median answer length); "
              "no swap = task adapter over the English language adapter; MAD-X = the same task adapter over the "
              "target language's adapter and invertible adapter; full = every weight fine-tuned at the same steps. "
              "Per-language bar charts: [`xling/report.md`](xling/report.md).", ""]
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m studies.demo_xling_summary REPORT_DIR")
    print("\n".join(xling_markdown(sys.argv[1])))
