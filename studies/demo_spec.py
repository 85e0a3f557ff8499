"""The demo's two ``nmt report --spec`` files (gettext and UDHR test sets), with each system's parameter counts.

    python -m studies.demo_spec --checkpoints work/demo/checkpoints --generate work/demo/generate \\
        --low-pair en-ar --output-dir work/demo

``<generate>/<system>/generate-<src>-<tgt>.txt`` folders, as ``recipes/demo.sh``
names them: ``base``, ``pair_adapter``, ``full_finetune``, ``lang_adapters``,
``<system>#<seed>`` for further seeds, ``<system>.others`` for the forgetting
runs (the ``--low-pair`` models on the other directions) and ``<system>.udhr``
for the UDHR test set.  Checkpoints: ``base``, ``pair_adapter-<pair>-s<seed>``,
``full_finetune-<pair>-s<seed>``, ``lang_adapters-s<seed>``.  Writes
``nmt_spec.gettext.json`` and ``nmt_spec.udhr.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adapter_core import atomic_write_json
from studies.nmt_report_spec import build_spec


def checkpoint_of(system: str, low_pair: str) -> str:
    """The checkpoint folder whose parameter counts a generate folder reports."""
    name, _, seed = system.removesuffix(".udhr").split(".")[0].partition("#")
    seed = seed or "1"
    if name == "base":
        return "base"
    if name == "lang_adapters":
        return f"lang_adapters-s{seed}"
    return f"{name}-{low_pair}-s{seed}"  # pair adapters of every pair have the same size


def build_specs(checkpoints: Path, generate: Path, low_pair: str) -> dict[str, dict]:
    """One spec per test set: ``<system>.udhr`` folders go to "udhr" (as ``<system>``), the others to "gettext"."""
    folders = sorted(p for p in generate.iterdir() if p.is_dir() and list(p.glob("generate-*.txt")))
    specs = {}
    for test_set, chosen in (("gettext", [f for f in folders if not f.name.endswith(".udhr")]),
                             ("udhr", [f for f in folders if f.name.endswith(".udhr")])):
        spec = build_spec(checkpoints, generate, lambda system: checkpoint_of(system, low_pair), chosen)
        rename = {name: name.removesuffix(".udhr") for name in spec["systems"]}
        specs[test_set] = {part: {rename[k]: v for k, v in spec[part].items()} for part in ("systems", "meta")}
    return specs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=Path, required=True, help="folder of <run>/checkpoint_last.pt")
    parser.add_argument("--generate", type=Path, required=True, help="folder of <system>/generate-<src>-<tgt>.txt")
    parser.add_argument("--low-pair", required=True, help="the pair of the forgetting runs (R6)")
    parser.add_argument("--output-dir", type=Path, required=True, help="where nmt_spec.{gettext,udhr}.json go")
    args = parser.parse_args(argv)
    try:
        specs = build_specs(args.checkpoints, args.generate, args.low_pair)
    except (FileNotFoundError, KeyError) as err:
        print(f"demo_spec: error: {err}", file=sys.stderr)
        return 1
    for test_set, spec in specs.items():
        atomic_write_json(args.output_dir / f"nmt_spec.{test_set}.json", spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
