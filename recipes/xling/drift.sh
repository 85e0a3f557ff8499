#!/usr/bin/env bash
# Representation drift (He et al. 2021) on the demo's tiny XLM-R and its catalog tagging task:
# a MAD-X task adapter (over the demo's English language adapter) and full fine-tuning, trained on
# the same data for the same number of steps, then per-layer linear CKA and RSA of each with the
# base model on the same English test sentences.  Run `make demo` (or its MAD-X part) first.
# Steps already done are skipped; about 2 minutes on one CPU thread.
#
# Variables (defaults in brackets):
#   BIN          folder of the console scripts                          [<repo>/.venv/bin]
#   DEMO         the demo's MAD-X work folder                           [work/demo/xling]
#   WORK         models trained here                                    [work/drift]
#   REPORT       drift.json, drift_cka.png, drift_rsa.png               [reports/drift]
#   STEPS        optimizer steps of every run                           [150, as the demo's task adapter]
#   ADAPTER_LR   learning rate of the task adapter                      [1e-3, as the demo]
#   FULL_LRS     learning rates of full fine-tuning (one model each)    [1e-4 1e-3]
#   SENTENCES    test sentences fed to every model                      [300]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"  # relative paths, so that drift.json names no machine-specific folders
BIN="${BIN:-$ROOT/.venv/bin}"
DEMO="${DEMO:-work/demo/xling}"
WORK="${WORK:-work/drift}"
REPORT="${REPORT:-reports/drift}"
STEPS="${STEPS:-150}"
ADAPTER_LR="${ADAPTER_LR:-1e-3}"
FULL_LRS="${FULL_LRS:-1e-4 1e-3}"
SENTENCES="${SENTENCES:-300}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore

MODEL="$DEMO/tiny-xlmr"; LANG_ADAPTER="$DEMO/lang-en/adapter"
TRAIN="$DEMO/tagging/train.en.panx"; TEST="$DEMO/tagging/test.en.panx"
for path in "$MODEL" "$LANG_ADAPTER" "$TRAIN" "$TEST"; do
  [ -e "$path" ] || { echo "drift.sh: $path not found; run the demo first (make demo) or set DEMO" >&2; exit 1; }
done
mkdir -p "$WORK" "$REPORT"
COMMON=(--model "$MODEL" --train "$TRAIN" --dev "$TEST" --max-steps "$STEPS" --batch-size 32 --max-length 64
        --save-steps "$STEPS" --seed 1)

[ -f "$WORK/adapter/adapter/task.json" ] || \
  "$BIN/xling" train-task --task ner --lang-adapter "$LANG_ADAPTER" "${COMMON[@]}" --learning-rate "$ADAPTER_LR" \
    --output-dir "$WORK/adapter"
FULL_MODELS=()
for lr in $FULL_LRS; do
  [ -f "$WORK/full-lr$lr/model/config.json" ] || \
    "$BIN/xling" train-full --task ner "${COMMON[@]}" --learning-rate "$lr" --output-dir "$WORK/full-lr$lr"
  FULL_MODELS+=("$WORK/full-lr$lr/model")
done

# The same inputs for every model: the English test sentences as plain text (the "en:" prefix dropped).
awk -F'\t' 'NF == 0 { if (line != "") print line; line = ""; next }
            { sub(/^en:/, "", $1); line = line == "" ? $1 : line " " $1 }
            END { if (line != "") print line }' "$TEST" > "$WORK/test.en.txt"

"$BIN/xling" drift --model "$MODEL" --task-adapter "$WORK/adapter/adapter" --lang-adapter "$LANG_ADAPTER" \
  --full-model "${FULL_MODELS[@]}" --text "$WORK/test.en.txt" --max-sentences "$SENTENCES" --max-length 64 \
  --output-dir "$REPORT"
"$BIN/python" - "$WORK" "$REPORT" <<'PY'
import json, sys
from pathlib import Path
work, report = Path(sys.argv[1]), Path(sys.argv[2])
scores = {"adapter": json.loads((work / "adapter" / "dev_results.json").read_text())["f1"]}
for path in sorted(work.glob("full-lr*/dev_results.json")):
    scores[f"full ({path.parent.name})"] = json.loads(path.read_text())["f1"]
(report / "task_f1.json").write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
print("test F1:", scores)
PY
