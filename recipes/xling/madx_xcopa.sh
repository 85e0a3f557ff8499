#!/usr/bin/env bash
# MAD-X zero-shot commonsense reasoning on XCOPA: the task adapter is trained on SIQA and evaluated
# on XCOPA with each target language's adapter swapped in.  (The paper's best setting then continues
# on English COPA; `xling train-task` starts a fresh task adapter on each run, so that second stage
# is not offered here yet.)  See common.sh for the variables.
#   SIQA       SIQA folder: train.jsonl, train-labels.lst                     [data/siqa]
#   XCOPA      XCOPA folder: test.<lang>.jsonl                                [data/xcopa]
#   TGT_LANGS  [et ht id it qu sw ta th tr vi zh]   TASK_EPOCHS [2]
set -euo pipefail
source "$(dirname "$0")/common.sh"
SIQA="${SIQA:-$ROOT/data/siqa}"
XCOPA="${XCOPA:-$ROOT/data/xcopa}"
TGT_LANGS="${TGT_LANGS:-et ht id it qu sw ta th tr vi zh}"
TASK_EPOCHS="${TASK_EPOCHS:-2}"

for lang in "$SRC_LANG" $TGT_LANGS; do language_adapter "$lang"; done
for seed in $SEEDS; do
  task_adapter copa "$seed" "$SIQA/train.jsonl" --train-labels "$SIQA/train-labels.lst" --epochs "$TASK_EPOCHS"
  for lang in $TGT_LANGS; do
    evaluate copa "$seed" "$lang" "$XCOPA/test.$lang.jsonl"
  done
done
report copa
