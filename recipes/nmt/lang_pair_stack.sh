#!/usr/bin/env bash
# Does a low-resource pair gain from starting on its languages' adapters?  --adapters-by lang+pair (issue 14)
# stacks a new pair adapter above the language adapters of Philip et al. (2020) (encoder: Stack(source
# language, pair), decoder: Stack(target language, pair); the language adapters frozen).  On the full-profile
# demo's base, for each seed: the demo's language adapters (that seed's run) are exported and loaded with
# --adapter-dirs, and an en-ar pair adapter is trained over them with the demo's pair-adapter flags, dimension,
# learning rate and updates.  Compared on the demo's en-ar test set with the demo's own runs of the same seeds:
# the base, the language adapters alone, and the pair adapter alone (Bapna & Firat 2019).
#
#   bash recipes/nmt/lang_pair_stack.sh    ->  work/lang_pair_stack, reports/nmt_lang_pair_stack/
# Variables (defaults in brackets):
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                                  # [.venv/bin]
DEMO_WORK="${DEMO_WORK:-$ROOT/work/demo-full}"                 # [work/demo-full] a finished full-profile demo
WORK="${STACK_WORK:-$ROOT/work/lang_pair_stack}"               # [work/lang_pair_stack]
REPORT="${STACK_REPORT:-$ROOT/reports/nmt_lang_pair_stack}"    # [reports/nmt_lang_pair_stack]
PAIR="${PAIR:-en-ar}"                                          # [en-ar] the demo's low-resource pair
SEEDS="${SEEDS:-1 2}"                                          # [1 2] the demo's seeds
PAIR_DIM="${PAIR_DIM:-64}"                                     # [64] the demo's
LANG_DIM="${LANG_DIM:-12}"                                     # [12] the demo's language adapters
ADAPTER_LR="${ADAPTER_LR:-1e-2}"                               # [1e-2] the demo's
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}" PYTHONWARNINGS=ignore

RECIPE=lang_pair_stack; source "$ROOT/recipes/nmt/on_full_demo.sh"  # DEMO_CKPT, DATA, RAW, BASE, CKPT, GEN; say()
UPDATES="$(grep -oE 'num_updates [0-9]+' "$DEMO_CKPT/pair_adapter-$PAIR-s1.log" | tail -1 | awk '{print $2}')"

SYSTEMS=(--system "base=$GEN/base")
mkdir -p "$GEN/base" && cp "$DEMO_WORK/generate/base/generate-$PAIR.txt" "$GEN/base/"
for seed in $SEEDS; do
  suffix=""; [ "$seed" = 1 ] || suffix="#$seed"  # the demo's generate/ folder names
  for system in lang_adapters pair_adapter; do
    mkdir -p "$GEN/$system-s$seed" && cp "$DEMO_WORK/generate/$system$suffix/generate-$PAIR.txt" "$GEN/$system-s$seed/"
    cp "$DEMO_CKPT/$system$([ $system = pair_adapter ] && echo "-$PAIR")-s$seed.log" "$CKPT/$system-s$seed.log"
    SYSTEMS+=(--system "$system-s$seed=$GEN/$system-s$seed")
  done
  name="lang+pair-s$seed"
  if [ ! -f "$GEN/$name/generate-$PAIR.txt" ]; then
    say "$name: the demo's language adapters (seed $seed) exported, a d $PAIR_DIM $PAIR pair adapter over them"
    "$BIN/nmt" export "$DEMO_CKPT/lang_adapters-s$seed/checkpoint_last.pt" --output-dir "$WORK/lang-s$seed" \
      --data "$DATA/bin" > /dev/null
    DIRS="$(ls -d "$WORK/lang-s$seed"/*/ | sed 's:/$::' | paste -sd, -)"
    adapter_run "$name" "$BASE" "$PAIR" lang+pair "$PAIR_DIM" "$seed" "$UPDATES" "$ADAPTER_LR" --adapter-dirs "$DIRS" \
      --adapter-lang-dim "$LANG_DIM"
    generate "$name" "$CKPT/$name/checkpoint_last.pt" "$PAIR" "$DATA/bin" --task adapter_translation \
      --enable-lang-ids --lang-pairs "$PAIR"
  fi
  SYSTEMS+=(--system "$name=$GEN/$name")
done

say "report"
"$BIN/nmt" report "${SYSTEMS[@]}" --raw-dir "$RAW" --supervised "$PAIR" --output-dir "$REPORT" > /dev/null
"$BIN/python" - "$REPORT" "$PAIR" "$CKPT" "$UPDATES" "$PAIR_DIM" "$LANG_DIM" <<'PY'
import json, re, statistics, sys
from pathlib import Path
report, pair, ckpt, updates, dim, lang_dim = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), *sys.argv[4:7]
scores = json.loads((report / "nmt.json").read_text())
def trainable(system):
    log = ckpt / f"{system}.log"
    found = re.findall(r"trainable parameters: ([\d,]+) of ([\d,]+)", log.read_text()) if log.exists() else []
    return f"{found[-1][0]} of {found[-1][1]}" if found else "-"
rows = []
for label, prefix in (("base", "base"), ("language adapters alone (Philip et al.)", "lang_adapters"),
                      ("pair adapter alone (Bapna & Firat)", "pair_adapter"),
                      ("Stack(language, pair): new pair adapter over the frozen language adapters", "lang+pair")):
    names = sorted(k for k in scores if k == prefix or k.startswith(prefix + "-s"))
    bleu = [scores[n][pair]["bleu"] for n in names]; chrf = [scores[n][pair]["chrf"] for n in names]
    spread = lambda v: f" ± {statistics.stdev(v):.1f}" if len(v) > 1 else ""
    rows.append((label, f"{statistics.mean(bleu):.1f}{spread(bleu)}", f"{statistics.mean(chrf):.1f}{spread(chrf)}",
                 ", ".join(f"{b:.1f}" for b in bleu), trainable(names[0]) if prefix != "base" else "-"))
copy = scores.get("copy", {}).get(pair, {})
lines = [f"# Stacked language and pair adapters on {pair} (`recipes/nmt/lang_pair_stack.sh`)", "",
         f"Full-profile demo base; {pair} test (gettext, 200 sentences, beam 5). Each adapter row: {updates} updates, "
         f"lr 1e-2, the demo's flags; the pair adapters have d {dim}, the language adapters d {lang_dim}. The stacked run loads the demo's language adapters "
         "of the same seed (`nmt export`, then `fairseq-train --adapters-by lang+pair --adapter-dirs ...`) and "
         "trains only the new pair adapter (`--adapter-lang-training frozen`). Mean ± std over seeds; per-seed BLEU "
         "after it.", "",
         "| system | BLEU | chrF++ | BLEU per seed | trainable weights |", "|---|---|---|---|---|"]
lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |" for r in rows]
if copy:
    lines += ["", f"Copying the source scores BLEU {copy['bleu']:.1f}, chrF++ {copy['chrf']:.1f}."]
lines += ["", "Per-direction tables and the signatures: [`nmt.md`](nmt.md); raw scores: `nmt.json`."]
(report / "README.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
