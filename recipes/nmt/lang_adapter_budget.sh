#!/usr/bin/env bash
# R4 on a stronger base: do Philip et al. (2020) monolingual adapters gain on the zero-shot directions when
# they get more updates?  On the full-profile demo's base (8,000 updates), the demo's language adapters
# (d 12, 800 updates) leave the zero-shot mean where the base has it; this recipe trains the same adapters
# (same data, flags, learning rate and seed) for each budget in BUDGETS and scores en->xx and the zero-shot
# directions against the base, with studies/nmt_levers_summary.py (reference = the base).  The demo's own
# 800-update run (seed 1) is reused, not retrained.
#
#   bash recipes/nmt/lang_adapter_budget.sh    ->  work/lang_adapter_budget, reports/nmt_lang_adapter_budget/
# Variables (defaults in brackets):
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                                  # [.venv/bin]
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
DEMO_WORK="${DEMO_WORK:-$ROOT/work/demo-full}"                 # [work/demo-full] a finished full-profile demo
WORK="${BUDGET_WORK:-$ROOT/work/lang_adapter_budget}"          # [work/lang_adapter_budget]
REPORT="${BUDGET_REPORT:-$ROOT/reports/nmt_lang_adapter_budget}"  # [reports/nmt_lang_adapter_budget]
BUDGETS="${BUDGETS:-2400}"                                     # [2400] updates of each new run
LANG_DIM="${LANG_DIM:-12}"                                     # [12] the demo's
ADAPTER_LR="${ADAPTER_LR:-1e-2}"                               # [1e-2] the demo's
ZERO_SHOT="${ZERO_SHOT:-de-fr,fr-de,uk-es}"                    # [the demo's] zero-shot test directions
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}" PYTHONWARNINGS=ignore

RECIPE=lang_adapter_budget; source "$ROOT/recipes/nmt/on_full_demo.sh"  # DEMO_CKPT, DATA, RAW, BASE, CKPT, GEN; say()
EN_XX="$(cat "$DATA/lang_pairs.txt")"
XX_EN="$(echo "$EN_XX" | tr ',' '\n' | awk -F- '{print $2"-"$1}' | paste -sd, -)"
ALL_EVAL="$EN_XX,$ZERO_SHOT"
DEMO_UPDATES="$(grep -oE 'num_updates [0-9]+' "$DEMO_CKPT/lang_adapters-s1.log" | tail -1 | awk '{print $2}')"

# the reference (the base) and the demo's own language adapters
mkdir -p "$GEN/reference" "$GEN/lang_adapters-$DEMO_UPDATES"
cp "$DEMO_WORK/generate/base"/generate-*.txt "$GEN/reference/"
cp "$DEMO_WORK/generate/lang_adapters"/generate-*.txt "$GEN/lang_adapters-$DEMO_UPDATES/"
cp "$DEMO_CKPT/lang_adapters-s1.log" "$CKPT/lang_adapters-$DEMO_UPDATES.log"
NAMES=("lang_adapters-$DEMO_UPDATES")
for updates in $BUDGETS; do
  name="lang_adapters-$updates"
  if [ ! -f "$GEN/$name/generate-${ZERO_SHOT##*,}.txt" ]; then
    say "$name: d $LANG_DIM, $updates updates on $EN_XX,$XX_EN"
    adapter_run "$name" "$BASE" "$EN_XX,$XX_EN" lang "$LANG_DIM" 1 "$updates" "$ADAPTER_LR"
    generate "$name" "$CKPT/$name/checkpoint_last.pt" "$ALL_EVAL" "$DATA/bin" --task adapter_translation \
      --enable-lang-ids --lang-pairs "$ALL_EVAL"
  fi
  NAMES+=("$name")
done

say "report"
SYSTEMS=(--system "reference=$GEN/reference"); for name in "${NAMES[@]}"; do SYSTEMS+=(--system "$name=$GEN/$name"); done
"$BIN/nmt" report "${SYSTEMS[@]}" --raw-dir "$RAW" --supervised "$EN_XX,$XX_EN" --output-dir "$REPORT" > /dev/null
"${STUDY[@]}" studies.nmt_levers_summary --report "$REPORT" --checkpoints "$CKPT" \
  --supervised "$EN_XX" --zero-shot "$ZERO_SHOT" \
  --title "Language adapters on the full profile's base, by budget (\`recipes/nmt/lang_adapter_budget.sh\`)" \
  --intro "The reference is the full-profile demo's base ($(basename "$DEMO_WORK"), its last checkpoint); each other row \
is Philip et al. (2020) monolingual adapters (d $LANG_DIM, lr $ADAPTER_LR, seed 1, encoder by source and decoder by \
target language) trained on every supervised direction for the updates shown, the $DEMO_UPDATES-update row being the \
demo's own run. BLEU/chrF++ on the demo's gettext test sets, means over en->xx and over the zero-shot directions \
($ZERO_SHOT). R4 asks > 0.5 BLEU over the base on the zero-shot mean. One seed: differences under about 0.5 BLEU are \
within noise. train_wall: seconds in training steps (fairseq's log), on a shared machine."
echo "report: $REPORT/README.md (reference = the base)"
