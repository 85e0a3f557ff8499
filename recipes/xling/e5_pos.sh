#!/usr/bin/env bash
# MAD-X on multilingual-e5-small: universal POS tags (12), Brown (en) -> Turkish (tr); four rows per
# training size and seed.  Needs the base of recipes/demo_xling.sh (BASE); trains the tr language
# adapter on the Turkish treebank's train split.  Variables: recipes/xling/e5_common.sh, and
#   POS_STEPS  steps of the adapter and of full fine-tuning (batch 16, 64 tokens)  [60]
set -euo pipefail
source "$(dirname "$0")/e5_common.sh"
POS_STEPS="${POS_STEPS:-60}"
study_setup
! needs_language_adapters || for lang in en tr; do language_adapter "$lang"; done
for size in $SIZES; do
  for seed in $SEEDS; do
    log "pos n=$size seed $seed"
    compare pos "$size" "$seed" "$POS_STEPS" 64 "$ADAPTER_LR" "$FULL_LR" 16 en tr
    rm -rf "$WORK"/runs/*/checkpoints
  done
  study_report
done
