"""Replace docs/studies.md's "Latest `make demo`" section with the tables of the committed reports/demo/README.md.

    python -m studies.readme_demo_section --report reports/demo --readme docs/studies.md
    python -m studies.readme_demo_section --report reports/demo-full --heading "### Latest \`DEMO_PROFILE=full make demo\`"

The README's figures must be those of the committed reports, made by that
commit's code; copying the tables (relations, gettext BLEU, sizes, UDHR,
forgetting, MAD-X) from the demo's own README.md keeps them identical.  The
section runs from its heading ("### Latest `make demo`" unless ``--heading``) to the next "## " or the
next "### Latest " heading.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from adapter_core import atomic_write_text

HEADING = "### Latest `make demo`"
KEEP = ("## Relations", "## Translation, gettext", "## Forgetting", "## Translation, UDHR", "## MAD-X")


def sections(markdown: str) -> dict[str, str]:
    """'## title' -> its body, from the demo's README."""
    parts = re.split(r"^(## .*)$", markdown, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def build_section(report: Path, heading: str = HEADING) -> str:
    text = (report / "README.md").read_text(encoding="utf-8")
    first = text.split("\n", 3)
    run_line = next((line for line in text.splitlines() if line.startswith("Run in ")), "")
    body = [f"{heading} (`{report}/`, made by this commit's code)", "", first[0].lstrip("# ").strip() + ". " + run_line, ""]
    for title, content in sections(text).items():
        if title.startswith(KEEP):
            content = content.replace("](bleu_heatmap.png)", f"]({report}/bleu_heatmap.png)")
            content = re.sub(r"\]\((?!http|reports/)([^)]+)\)", rf"]({report}/\1)", content)
            body += ["#" + title, "", content, ""]
    return "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=Path("reports/demo"))
    parser.add_argument("--readme", type=Path, default=Path("docs/studies.md"))
    parser.add_argument("--heading", default=HEADING, help=f"the section's heading [{HEADING}]")
    args = parser.parse_args(argv)
    readme = args.readme.read_text(encoding="utf-8")
    start = readme.find(args.heading + " ")
    if start < 0:
        print(f"readme_demo_section: error: {args.readme} has no '{args.heading}' heading", file=sys.stderr)
        return 1
    ends = [i for i in (readme.find("\n## ", start), readme.find("\n### Latest ", start + 1)) if i >= 0]
    end = min(ends) if ends else len(readme)
    atomic_write_text(args.readme, readme[:start] + build_section(args.report, args.heading) + readme[end + 1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
