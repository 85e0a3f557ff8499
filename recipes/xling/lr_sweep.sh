#!/usr/bin/env bash
# Learning-rate robustness (He et al. 2021): adapter tuning vs full fine-tuning over a sweep of
# learning rates, on one task, scored on a dev file; then one plot with a line per mode.
#
# Variables (defaults in brackets):
#   MODEL       local base model directory                       [models/xlm-roberta-base]
#   TASK        ner | qa | copa                                  [ner]
#   LANG_ADAPTER source language adapter directory               [runs/xling/lang/en/adapter]
#   TRAIN       training file                                    [data/xling/panx/en/train]
#   DEV         dev file                                         [data/xling/panx/en/dev]
#   OUT         output root                                      [runs/xling/lr_sweep/$TASK]
#   ADAPTER_LRS learning rates for adapters                      [1e-5 3e-5 1e-4 3e-4 1e-3 3e-3]
#   FULL_LRS    learning rates for full fine-tuning              [1e-6 3e-6 1e-5 3e-5 1e-4 3e-4]
#   SEEDS       seeds                                            [1 2 3]
#   EPOCHS      epochs per run                                   [3]
#   EXTRA       extra flags for every run (e.g. "--cpu --max-steps 20")  []
#   PYTHON      python interpreter                               [.venv/bin/python]
set -euo pipefail

MODEL="${MODEL:-models/xlm-roberta-base}"
TASK="${TASK:-ner}"
LANG_ADAPTER="${LANG_ADAPTER:-runs/xling/lang/en/adapter}"
TRAIN="${TRAIN:-data/xling/panx/en/train}"
DEV="${DEV:-data/xling/panx/en/dev}"
OUT="${OUT:-runs/xling/lr_sweep/${TASK}}"
ADAPTER_LRS="${ADAPTER_LRS:-1e-5 3e-5 1e-4 3e-4 1e-3 3e-3}"
FULL_LRS="${FULL_LRS:-1e-6 3e-6 1e-5 3e-5 1e-4 3e-4}"
SEEDS="${SEEDS:-1 2 3}"
EPOCHS="${EPOCHS:-3}"
EXTRA="${EXTRA:-}"
PYTHON="${PYTHON:-.venv/bin/python}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m)  # the study: studies/xling_lr_sweep.py

for path in "$MODEL" "$LANG_ADAPTER" "$TRAIN" "$DEV"; do
  [[ -e "$path" ]] || { echo "lr_sweep.sh: $path not found (set MODEL, LANG_ADAPTER, TRAIN, DEV)" >&2; exit 1; }
done

run() {  # mode lr seed
  local dir="$OUT/$1/lr$2/seed$3"
  if [[ -f "$dir/lr_result.json" ]]; then
    echo "skip $dir (done)"; return
  fi
  # shellcheck disable=SC2086
  "${STUDY[@]}" studies.xling_lr_sweep run --mode "$1" --task "$TASK" --model "$MODEL" --lang-adapter "$LANG_ADAPTER" \
    --train "$TRAIN" --dev "$DEV" --learning-rate "$2" --seed "$3" --epochs "$EPOCHS" --output-dir "$dir" $EXTRA
}

for seed in $SEEDS; do
  for lr in $ADAPTER_LRS; do run adapter "$lr" "$seed"; done
  for lr in $FULL_LRS; do run full "$lr" "$seed"; done
done

"${STUDY[@]}" studies.xling_lr_sweep plot "$OUT"/*/lr*/seed*/lr_result.json --output "$OUT/lr_sweep.png"
