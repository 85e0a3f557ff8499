#!/usr/bin/env bash
# MAD-X on multilingual-e5-small: MultiEmo sentiment (4 classes), trained on English, zero-shot on
# TGT_LANGS; four rows (majority, no swap, MAD-X, full fine-tuning) per training size and seed.
# Needs the base of recipes/demo_xling.sh (BASE, default work/xling-e5).  Variables: see
# recipes/xling/e5_common.sh (study_setup), and
#   TGT_LANGS  target languages (each needs text: MultiEmo train split)   [de pl]
#   CLS_STEPS  steps of the adapter and of full fine-tuning (batch 16, 64 tokens)  [60, as the demo]
set -euo pipefail
source "$(dirname "$0")/e5_common.sh"
TGT_LANGS="${TGT_LANGS:-de pl}"
CLS_STEPS="${CLS_STEPS:-60}"
# shellcheck disable=SC2086
study_setup
for lang in en $TGT_LANGS; do
  [ -s "$DATA/cls.test.$lang.jsonl" ] || subset "$BB/multiemo/test.$lang.jsonl" "$CLS_TEST" "$DATA/cls.test.$lang.jsonl"
  [ -s "$MONO/lang/$lang.txt" ] || "${CMP[@]}" text --input "$BB/multiemo/train.$lang.jsonl" --output "$MONO/lang/$lang.txt" \
    --max-lines "$MONO_LINES" > /dev/null
  language_adapter "$lang"
done
for size in $SIZES; do
  for seed in $SEEDS; do
    log "classification n=$size seed $seed"
    # shellcheck disable=SC2086
    compare classification "$size" "$seed" "$CLS_STEPS" 64 "$ADAPTER_LR" "$FULL_LR" 16 en $TGT_LANGS
    rm -rf "$WORK"/runs/*/checkpoints
  done
  study_report
done
