#!/usr/bin/env bash
# MAD-X's language adapters at a budget where they can learn (issue 23, items 1 and 2), on multilingual-e5-small:
#   1. an MLM head trained to its plateau: the frozen encoder's outputs at masked positions are cached
#      (MLM_HEAD_PASSES masked copies of the text), the head trains on MLM_HEAD_TOKENS of them per step, and its
#      held-out masked-token accuracy is measured every 250 steps until it gains < 0.5 points per 500 steps;
#   2. language adapters (Pfeiffer et al. 2020: rf 2 + NICE) for PLATEAU_LANGS at each rate of LANG_LRS (MAD-X's
#      1e-4 and higher), each trained until its held-out MLM loss falls by less than LANG_PLATEAU_DELTA nats over
#      LANG_PLATEAU_WINDOW steps (at most LANG_STEPS), then scored on its language's held-out text under the bare
#      encoder, the English adapter and its own adapter (PASS: own loss below both by > 0.05 nats);
#   3. REPORTS/: head curve, adapter curves, the loss table (recipes/xling/madx_plateau_report.py).
# Needs a trimmed base (BASE/e5-trim, made by recipes/demo_xling.sh or recipes/xling/e5_ner.sh).  The swap is then
# re-measured with these adapters by e5_pos.sh / e5_ner.sh with HEAD_DIR, LANG_ROOT and LANG_HELDOUT set as here.
# Variables: recipes/xling/e5_common.sh, and
#   HEAD_LINES     lines of each language's training text that the head reads (cached encoder passes cost
#                  one forward per line and pass: 2 passes x 3,000 lines are ~10 min on a loaded CPU thread)  [1000]
#   PLATEAU_LANGS  languages (the checks need en's adapter: the source)        [en tr pl]
#   LANG_LRS       learning rates; adapters of rate R go to BASE/lang-lrR/     [1e-4 1e-3]
#   REPORTS        report folder                                               [reports/xling_e5_madx_plateau]
set -euo pipefail
HEAD_DIR="${HEAD_DIR:-e5-head-plateau}"
MLM_HEAD_STEPS="${MLM_HEAD_STEPS:-1500}"
MLM_HEAD_TOKENS="${MLM_HEAD_TOKENS:-512}"
MLM_HEAD_PASSES="${MLM_HEAD_PASSES:-2}"
MLM_HEAD_FLAGS="${MLM_HEAD_FLAGS:---stop-at-plateau --eval-every 100 --plateau-window 300 --plateau-gain 0.3}"
HEAD_LINES="${HEAD_LINES:-1000}"
MLM_HEAD_LINES="${MLM_HEAD_LINES:-0}"  # the head's files hold HEAD_LINES lines each already
LANG_HELDOUT="${LANG_HELDOUT:-200}"
LANG_STEPS="${LANG_STEPS:-400}"
LANG_PLATEAU_DELTA="${LANG_PLATEAU_DELTA:-0.02}"
LANG_PLATEAU_WINDOW="${LANG_PLATEAU_WINDOW:-100}"
LANG_EVAL_STEPS="${LANG_EVAL_STEPS:-50}"
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
PLATEAU_LANGS="${PLATEAU_LANGS:-en tr pl}"
LANG_LRS="${LANG_LRS:-1e-4 1e-3}"; [ "$LANG_LRS" != none ] || LANG_LRS=""
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_madx_plateau}"
[ -f "$BASE/e5-trim/config.json" ] || {
  echo "no trimmed encoder in BASE=$BASE: run recipes/xling/e5_ner.sh (NER_BASE=BASE) or recipes/demo_xling.sh first" >&2
  exit 1; }

mkdir -p "$MONO/head-$HEAD_LINES"  # one folder per HEAD_LINES: heads of other sizes keep their text
HEAD_TEXT=""
for lang in $PLATEAU_LANGS; do
  lang_split "$lang"
  [ -s "$MONO/head-$HEAD_LINES/$lang.txt" ] || head -n "$HEAD_LINES" "$MONO/split/$lang.train.txt" > "$MONO/head-$HEAD_LINES/$lang.txt"
  HEAD_TEXT+="$MONO/head-$HEAD_LINES/$lang.txt "
done
log "MLM head: at most $MLM_HEAD_STEPS steps x $MLM_HEAD_TOKENS masked tokens ($MLM_HEAD_PASSES cached passes) -> $MODEL"
prepare_encoder
for lr in $LANG_LRS; do
  LANG_ROOT="$BASE/lang-lr$lr"; LANG_LR=$lr
  for lang in $PLATEAU_LANGS; do
    log "language adapter $lang, lr $lr (at most $LANG_STEPS steps x $LANG_BATCH lines)"
    language_adapter "$lang"
  done
  [ ! -f "$LANG_ROOT/lang-en/adapter/adapter_config.json" ] || for lang in $PLATEAU_LANGS; do lang_check "$lang" en; done
done
mkdir -p "$REPORTS"
# shellcheck disable=SC2086
"$BIN/python" "$ROOT/recipes/xling/madx_plateau_report.py" --base "$BASE" --head-dir "$HEAD_DIR" --langs $PLATEAU_LANGS \
  --lrs $LANG_LRS --output-dir "$REPORTS"
echo "report: $REPORTS/plateau.md"
