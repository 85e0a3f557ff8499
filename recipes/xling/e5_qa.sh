#!/usr/bin/env bash
# MAD-X on multilingual-e5-small: extractive QA, SQuAD v1.1 (en) -> Hindi and Persian (bigbench);
# four rows (random-span baseline, no swap, MAD-X, full fine-tuning) per training size and seed.
# Needs the base of recipes/demo_xling.sh (BASE).  The slowest task: 128-token windows.
# Variables: recipes/xling/e5_common.sh, and
#   QA_STEPS  steps of the adapter and of full fine-tuning (batch 8, 128 tokens)  [60, as the demo]
set -euo pipefail
source "$(dirname "$0")/e5_common.sh"
QA_STEPS="${QA_STEPS:-60}"
study_setup
for lang in en hi fa; do language_adapter "$lang"; done
for size in $SIZES; do
  for seed in $SEEDS; do
    log "qa n=$size seed $seed"
    compare qa "$size" "$seed" "$QA_STEPS" 128 "$ADAPTER_LR" "$FULL_LR" 8 en hi fa
    rm -rf "$WORK"/runs/*/checkpoints
  done
  study_report
done
