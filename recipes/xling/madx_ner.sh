#!/usr/bin/env bash
# MAD-X zero-shot NER on WikiANN (PAN-X): task adapter trained on SRC_LANG, evaluated on TGT_LANGS.
# Data: the XTREME PAN-X files ($PANX/<lang>/train, dev, test in `lang:token<TAB>label` form) or the
# Hugging Face wikiann parquet files ($PANX/<lang>/train.parquet ...).  See common.sh for the variables.
#   PANX       PAN-X / WikiANN folder                                         [data/panx]
#   TGT_LANGS  [de ar sw]        TASK_EPOCHS  [3]
set -euo pipefail
source "$(dirname "$0")/common.sh"
PANX="${PANX:-$ROOT/data/panx}"
TGT_LANGS="${TGT_LANGS:-de ar sw}"
TASK_EPOCHS="${TASK_EPOCHS:-3}"
pick() { for name in "$@"; do [ -e "$name" ] && { echo "$name"; return; }; done; echo "none of: $*" >&2; exit 1; }

for lang in "$SRC_LANG" $TGT_LANGS; do language_adapter "$lang"; done
for seed in $SEEDS; do
  task_adapter ner "$seed" "$(pick "$PANX/$SRC_LANG/train" "$PANX/$SRC_LANG/train.parquet")" --epochs "$TASK_EPOCHS"
  for lang in "$SRC_LANG" $TGT_LANGS; do
    evaluate ner "$seed" "$lang" "$(pick "$PANX/$lang/test" "$PANX/$lang/test.parquet")"
  done
done
report ner
