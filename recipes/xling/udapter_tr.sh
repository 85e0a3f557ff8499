#!/usr/bin/env bash
# UDapter (Üstün et al. 2020) on the real encoder, Turkish only: the registries ship no UD treebank in any other
# language (the search: reports/xling_udapter/README.md), so the Turkish Web Treebank's two files, web and wiki,
# are the two "treebanks" whose embeddings generate the adapters.  Three ways to train the same biaffine parser
# (xling train-parser): full fine-tuning, one plain task adapter (MAD-X's, rf 16), generated adapters (rf 16,
# treebank embedding of width 8).  Every run trains on both train splits together and is scored on both test
# splits (UAS/LAS, MST decoding, every word); the table is mean ± std over the seeds.
#
# Budgets are optimizer steps.  Variables (defaults in brackets):
#   BIN      folder of the console scripts                       [<repo>/.venv/bin]
#   BASE     work folder (data, trimmed encoder, results)          [work/udapter-tr]
#   E5       the imported multilingual-e5-small (xling import-e5)  [work/xling-e5/e5-full]
#   STEPS    optimizer steps per run                               [150]
#   BATCH    sentences per step                                    [8]
#   SEEDS    seeds                                                 ["1 2 3"]
#   METHODS  methods                                               ["full adapter generated"]
#   REPORT   folder for the table                                  [reports/xling_udapter]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
BASE="${BASE:-$ROOT/work/udapter-tr}"
E5="${E5:-$ROOT/work/xling-e5/e5-full}"
STEPS="${STEPS:-150}"
BATCH="${BATCH:-8}"
SEEDS="${SEEDS:-1 2 3}"
METHODS="${METHODS:-full adapter generated}"
REPORT="${REPORT:-$ROOT/reports/xling_udapter}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
log() { printf '== %s  [%s, %ss]\n' "$*" "$(date +%H:%M:%S)" "$SECONDS"; }

mkdir -p "$BASE/results" "$BASE/logs"
[ -f "$BASE/treebanks/words.txt" ] || "$BIN/data-prep" treebanks --output-dir "$BASE/treebanks" > "$BASE/logs/treebanks.log"
if [ ! -f "$BASE/e5-tr/config.json" ]; then
  [ -f "$E5/config.json" ] || { echo "no encoder at $E5: run recipes/xling/e5_common.sh first (or set E5)" >&2; exit 1; }
  log "trimming $E5 to the treebanks' vocabulary"
  "$BIN/xling" trim-vocab --model "$E5" --text "$BASE/treebanks/words.txt" --output-dir "$BASE/e5-tr" > "$BASE/logs/trim.log" 2>&1
fi
for seed in $SEEDS; do
  for method in $METHODS; do
    out="$BASE/results/$method-$seed.json"
    [ -f "$out" ] && continue
    log "$method seed $seed ($STEPS steps of $BATCH sentences)"
    "$BIN/xling" train-parser --model "$BASE/e5-tr" --data-dir "$BASE/treebanks" --treebanks web wiki \
      --method "$method" --max-steps "$STEPS" --batch-size "$BATCH" --seed "$seed" --device cpu \
      --output "$out" 2> "$BASE/logs/$method-$seed.log"
  done
done
mkdir -p "$REPORT/results"
cp "$BASE"/results/*.json "$REPORT/results/"
"$BIN/python" -m xling.parser_report "$REPORT"/results/*.json --output "$REPORT/table.md"
log "table -> $REPORT/table.md"
