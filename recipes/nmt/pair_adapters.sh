#!/usr/bin/env bash
# Bapna & Firat (2019) pair adapters for SRC<->TGT on a frozen multilingual base, against the base itself.
#
#   recipes/nmt/pair_adapters.sh SRC TGT        e.g. recipes/nmt/pair_adapters.sh en ar
#
# Steps (each skipped when its output exists, so a re-run after an interruption continues; an interrupted
# fairseq-train resumes from its checkpoint_last.pt):
#   1. binarise RAW's SRC-TGT text with the base's SentencePiece model and dictionary (M2M-100 base), or use
#      the base's own binarised data (BASE=own);
#   2. train SRC-TGT and TGT-SRC pair adapters in one run (mixed batches), bottleneck width and number of
#      updates from pairs.conf (else sized by the training data);
#   3. export each adapter as its own directory (nmt export: megabytes, not the base's gigabytes);
#   4. translate the test sets with the base and with base + adapters (--adapter-dirs);
#   5. nmt report: BLEU/chrF++ with sacreBLEU signatures -> $REPORTS/pair-SRC-TGT/nmt.md.
# Variables: see common.sh (BASE, BASE_CKPT, M2M_DIR, RAW, WORK, REPORTS, ...), plus
#   UPDATES      updates when pairs.conf does not list the pair     [5000]
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SRC TGT (e.g. en ar)" >&2; exit 2; }
SRC=$1; TGT=$2
source "$(dirname "$0")/common.sh"
UPDATES="${UPDATES:-5000}"
check_inputs

PAIR="$SRC-$TGT"; BACK="$TGT-$SRC"
if [ -f "$RAW/train.$PAIR.$SRC" ]; then RAW_PAIR=$PAIR; elif [ -f "$RAW/train.$BACK.$SRC" ]; then RAW_PAIR=$BACK;
else die "no training text for $PAIR in $RAW (expected train.$PAIR.$SRC and train.$PAIR.$TGT)"; fi

say "1/5 data for $PAIR"
if [ "$BASE" = own ]; then DATA="$BASE_DATA/bin"; else DATA="$WORK/data-$BASE/bin"; binarise "$RAW" "$WORK/data-$BASE" "$RAW_PAIR"; fi
LINES=$(wc -l < "$RAW/train.$RAW_PAIR.$SRC")
DIM=$(adapter_dim_for "$PAIR" "$LINES"); [ "$DIM" = "$(adapter_dim_for "$BACK" "$LINES")" ] || DIM=$(adapter_dim_for "$BACK" "$LINES")
LISTED_UPDATES="$(awk -v p="$PAIR" -v q="$BACK" '$1 == p || $1 == q {print $3}' "$(dirname "$0")/pairs.conf" | head -1)"
STEPS="${LISTED_UPDATES:-$UPDATES}"
echo "$PAIR: $LINES training lines -> adapter dim $DIM, $STEPS updates"

say "2/5 pair adapters $PAIR,$BACK"
NAME="pair-$PAIR"
train "$NAME" "$DATA" --lang-pairs "$PAIR,$BACK" --adapters-by pair --adapter-dim "$DIM" --max-update "$STEPS"

say "3/5 export"
EXPORT="$WORK/adapters/$NAME"
[ -f "$EXPORT/$PAIR/adapter_model.safetensors" ] && [ -f "$EXPORT/$BACK/adapter_model.safetensors" ] \
  || "$BIN/nmt" export "$WORK/checkpoints/$NAME/checkpoint_last.pt" --output-dir "$EXPORT" --data "$DATA" > /dev/null

say "4/5 translate the test sets"
for direction in "$PAIR" "$BACK"; do
  generate "$NAME-base" "$DATA" "$BASE_CKPT" "$direction" --task translation_multi_simple_epoch --lang-pairs "$PAIR,$BACK"
  generate "$NAME-adapters" "$DATA" "$BASE_CKPT" "$direction" --task adapter_translation --lang-pairs "$PAIR,$BACK" \
    --adapter-dirs "$EXPORT/$direction"
done

say "5/5 report"
"$BIN/nmt" report --system "base=$WORK/generate/$NAME-base" --system "pair_adapters=$WORK/generate/$NAME-adapters" \
  --raw-dir "$RAW" --supervised "$PAIR,$BACK" --output-dir "$REPORTS/$NAME"
echo "report: $REPORTS/$NAME/nmt.md"
