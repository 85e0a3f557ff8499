#!/usr/bin/env bash
# Philip et al. (2020) monolingual adapters: one encoder adapter per source and one decoder adapter per target
# language, trained on the supervised en<->xx pairs among LANGS, then evaluated on them and zero-shot on every
# xx->yy pair among LANGS that has a test set in RAW but no training data (de->fr uses the de encoder and the fr
# decoder adapter).
#
#   recipes/nmt/monolingual_adapters.sh LANGS      e.g. recipes/nmt/monolingual_adapters.sh en,de,fr,es
#
# Steps (each skipped when its output exists; an interrupted fairseq-train resumes):
#   1. the supervised pairs (RAW has train.<a>-<b>.*) and zero-shot pairs (test only) among LANGS; binarise them
#      (M2M-100 base) or use the base's binarised data (BASE=own);
#   2. train the language adapters on all supervised directions in one run (mixed batches);
#   3. translate every supervised and zero-shot test set with the base and with the adapters;
#   4. nmt report (zero-shot directions marked) -> $REPORTS/monolingual/nmt.md.
# Variables: see common.sh, plus
#   ADAPTER_DIM  bottleneck width of every language adapter         [128]
#   UPDATES      training updates                                   [10000]
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 LANGS (comma-separated, e.g. en,de,fr,es)" >&2; exit 2; }
source "$(dirname "$0")/common.sh"
ADAPTER_DIM="${ADAPTER_DIM:-128}"
UPDATES="${UPDATES:-10000}"
check_inputs
IFS=, read -r -a LANG_LIST <<< "$1"

SUPERVISED=(); ZERO_SHOT=(); RAW_PAIRS=()
for a in "${LANG_LIST[@]}"; do
  for b in "${LANG_LIST[@]}"; do
    [ "$a" = "$b" ] && continue
    if [ -f "$RAW/train.$a-$b.$a" ]; then SUPERVISED+=("$a-$b" "$b-$a"); RAW_PAIRS+=("$a-$b")
    elif [ -f "$RAW/test.$a-$b.$a" ] && [ ! -f "$RAW/train.$b-$a.$a" ]; then ZERO_SHOT+=("$a-$b"); RAW_PAIRS+=("$a-$b"); fi
  done
done
[ ${#SUPERVISED[@]} -gt 0 ] || die "no train.<a>-<b>.* files in $RAW for the languages $1"
SUPERVISED_CSV="$(printf '%s\n' "${SUPERVISED[@]}" | sort -u | paste -sd, -)"
ALL_CSV="$(printf '%s\n' "${SUPERVISED[@]}" "${ZERO_SHOT[@]}" | sort -u | paste -sd, -)"
echo "supervised: $SUPERVISED_CSV"; echo "zero-shot: $(printf '%s ' "${ZERO_SHOT[@]}")"

say "1/4 data"
if [ "$BASE" = own ]; then DATA="$BASE_DATA/bin"; else DATA="$WORK/data-$BASE/bin"; binarise "$RAW" "$WORK/data-$BASE" "${RAW_PAIRS[@]}"; fi

say "2/4 language adapters ($ADAPTER_DIM wide, $UPDATES updates)"
NAME=monolingual
train "$NAME" "$DATA" --lang-pairs "$SUPERVISED_CSV" --adapters-by lang --adapter-dim "$ADAPTER_DIM" \
  --max-update "$UPDATES"

say "3/4 translate (supervised and zero-shot)"
for direction in ${ALL_CSV//,/ }; do
  [ -f "$DATA/test.$direction.${direction%-*}.bin" ] || [ -f "$DATA/test.${direction#*-}-${direction%-*}.${direction%-*}.bin" ] || continue
  generate "$NAME-base" "$DATA" "$BASE_CKPT" "$direction" --task translation_multi_simple_epoch --lang-pairs "$ALL_CSV"
  generate "$NAME-adapters" "$DATA" "$WORK/checkpoints/$NAME/checkpoint_last.pt" "$direction" \
    --task adapter_translation --lang-pairs "$ALL_CSV"
done

say "4/4 report"
"$BIN/nmt" report --system "base=$WORK/generate/$NAME-base" --system "language_adapters=$WORK/generate/$NAME-adapters" \
  --raw-dir "$RAW" --supervised "$SUPERVISED_CSV" --output-dir "$REPORTS/$NAME"
echo "report: $REPORTS/$NAME/nmt.md"
