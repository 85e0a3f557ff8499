#!/usr/bin/env bash
# MAD-X zero-shot extractive QA: task adapter trained on SQuAD v1.1 (SRC_LANG), evaluated on XQuAD
# (and MLQA with its language-specific normalisation).  See common.sh for the variables.
#   SQUAD      SQuAD v1.1 train JSON                                          [data/squad/train-v1.1.json]
#   XQUAD      XQuAD folder: xquad.<lang>.json                                [data/xquad]
#   TGT_LANGS  [de ar es]        TASK_EPOCHS  [2]
set -euo pipefail
source "$(dirname "$0")/common.sh"
SQUAD="${SQUAD:-$ROOT/data/squad/train-v1.1.json}"
XQUAD="${XQUAD:-$ROOT/data/xquad}"
TGT_LANGS="${TGT_LANGS:-de ar es}"
TASK_EPOCHS="${TASK_EPOCHS:-2}"
[ -f "$SQUAD" ] || { echo "SQUAD=$SQUAD not found" >&2; exit 1; }

for lang in "$SRC_LANG" $TGT_LANGS; do language_adapter "$lang"; done
for seed in $SEEDS; do
  task_adapter qa "$seed" "$SQUAD" --epochs "$TASK_EPOCHS" --max-length 384
  for lang in "$SRC_LANG" $TGT_LANGS; do
    evaluate qa "$seed" "$lang" "$XQUAD/xquad.$lang.json" --max-length 384
  done
done
report qa
