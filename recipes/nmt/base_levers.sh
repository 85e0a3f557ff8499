#!/usr/bin/env bash
# Levers on the translation demo's base, each measured at (about) equal CPU time against the default
# `make demo` base, on the same gettext test sets.  Every variant changes one thing:
#
#   reference   the default demo's base itself (3+3 layers, d 128, SentencePiece 4,000, label smoothing 0.1,
#               lr 2e-3, 12 directions en<->de,fr,es,sv,uk,ar), BASE_UPDATES updates
#   ls0         label smoothing 0
#   lr4e-3      peak learning rate 4e-3
#   spm8000     a SentencePiece vocabulary of 8,000 pieces (the demo's: 4,000)
#   fewer       fewer directions: en<->de,fr,es only; scored on the directions it keeps
#   deeper      6+6 layers, at DEEP_UPDATES updates: by multiply-adds per target token (layers plus the
#               4,000-piece output layer) an update costs about 1.7 times the reference's, so equal CPU time
#               means about 1500 / 1.7 = 900 updates (the report gives every run's train_wall to check)
#
# Budgets are updates; the cost per update is reported (train_wall), so "equal CPU time" can be checked.
# Needs a finished `make demo` (its data and its base's hypotheses in DEMO_WORK).  One seed each.
#   bash recipes/nmt/base_levers.sh        ->  work/levers, reports/nmt_levers/README.md
# Variables (defaults in brackets):
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                       # [.venv/bin]
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
DEMO_WORK="${DEMO_WORK:-$ROOT/work/demo}"           # [work/demo] a finished default `make demo`
WORK="${LEVERS_WORK:-$ROOT/work/levers}"            # [work/levers] checkpoints and hypotheses
REPORT="${LEVERS_REPORT:-$ROOT/reports/nmt_levers}" # [reports/nmt_levers]
BASE_UPDATES="${BASE_UPDATES:-1500}"                # [1500] the default demo's base
DEEP_UPDATES="${DEEP_UPDATES:-900}"                 # [900] the deeper base's updates (equal CPU time)
VARIANTS="${VARIANTS:-ls0 lr4e-3 spm8000 fewer deeper}"  # [all five] which variants to train
ZERO_SHOT="${ZERO_SHOT:-de-fr,fr-de,uk-es}"         # [as the demo] zero-shot test directions
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}" PYTHONWARNINGS=ignore

RAW="$DEMO_WORK/raw"; DEMO_DATA="$DEMO_WORK/bin"
[ -f "$DEMO_DATA/langs.txt" ] && [ -d "$DEMO_WORK/generate/base" ] || {
  echo "base_levers: no finished make demo in DEMO_WORK=$DEMO_WORK (run make demo first)" >&2; exit 1; }
CKPT="$WORK/checkpoints"; GEN="$WORK/generate"; DATA="$DEMO_DATA"
USER_DIR="$("$BIN/nmt" user-dir)"
mkdir -p "$CKPT" "$GEN" "$REPORT"
LANG_LIST="$(cat "$DEMO_DATA/langs.txt")"
EN_XX="$(cat "$DEMO_DATA/lang_pairs.txt")"
XX_EN="$(echo "$EN_XX" | tr ',' '\n' | awk -F- '{print $2"-"$1}' | paste -sd, -)"
source "$ROOT/recipes/demo_lib.sh"  # SHAPE, MULTI, TRAIN, DEVICE; train(), generate()
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }

# the reference: the demo's own base and its hypotheses
mkdir -p "$GEN/reference"
cp "$DEMO_WORK/checkpoints/base.log" "$CKPT/reference.log"
cp "$DEMO_WORK/generate/base"/generate-*.txt "$GEN/reference/"

base_variant() { # name updates eval-directions lang-pairs extra-flags...: train the base with one change, then translate
  local name=$1 updates=$2 eval=$3 pairs=$4; shift 4
  say "$name: $updates updates on $pairs"
  train "$name" --max-update "$updates" --task translation_multi_simple_epoch --lang-pairs "$pairs" "${MULTI[@]}" \
    --arch transformer "${SHAPE[@]}" "${TRAIN[@]}" --seed 1 --lr 2e-3 --warmup-updates 300 "$@"
  generate "$name" "$CKPT/$name/checkpoint_last.pt" "$eval" "$DATA/bin" --task translation_multi_simple_epoch \
    --lang-pairs "$eval"
}

ALL_EVAL="$EN_XX,$ZERO_SHOT"
for variant in $VARIANTS; do
  DATA="$DEMO_DATA"
  case $variant in
    ls0)    base_variant ls0 "$BASE_UPDATES" "$ALL_EVAL" "$EN_XX,$XX_EN" --label-smoothing 0.0 ;;
    lr4e-3) base_variant lr4e-3 "$BASE_UPDATES" "$ALL_EVAL" "$EN_XX,$XX_EN" --lr 4e-3 ;;
    spm8000)
      DATA="$WORK/bin-spm8000"
      [ -f "$DATA/langs.txt" ] || "$BIN/data-prep" spm-bin --raw-dir "$RAW" --output-dir "$DATA" --vocab-size 8000 \
        --max-lines-per-lang 8000 --workers "$(nproc)" > "$WORK/spm8000.json" 2> "$WORK/spm8000.log" \
        || { tail -20 "$WORK/spm8000.log" >&2; exit 1; }
      base_variant spm8000 "$BASE_UPDATES" "$ALL_EVAL" "$EN_XX,$XX_EN" ;;
    fewer)
      base_variant fewer "$BASE_UPDATES" "en-de,en-fr,en-es,de-fr,fr-de" "en-de,en-fr,en-es,de-en,fr-en,es-en" ;;
    deeper)
      base_variant deeper "$DEEP_UPDATES" "$ALL_EVAL" "$EN_XX,$XX_EN" --encoder-layers 6 --decoder-layers 6 ;;
    *) echo "base_levers: unknown variant $variant (ls0 lr4e-3 spm8000 fewer deeper)" >&2; exit 2 ;;
  esac
done

say "report"
SYSTEMS=(); for name in reference $VARIANTS; do SYSTEMS+=(--system "$name=$GEN/$name"); done
"$BIN/nmt" report "${SYSTEMS[@]}" --raw-dir "$RAW" --supervised "$EN_XX,$XX_EN" --output-dir "$REPORT" > /dev/null
"${STUDY[@]}" studies.nmt_levers_summary --report "$REPORT" --checkpoints "$CKPT" \
  --supervised "$EN_XX" --zero-shot "$ZERO_SHOT"
echo "report: $REPORT/README.md"
