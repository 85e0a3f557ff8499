#!/usr/bin/env bash
# He et al. (2021), "On the Effectiveness of Adapter-based Tuning for Pretrained Language Model Adaptation"
# (ACL 2021): adapter tuning beats full fine-tuning in low-resource and cross-lingual settings, and is less
# sensitive to the learning rate.  On POS, Brown (en) -> Turkish (tr), zero-shot, on multilingual-e5-small:
#   1. learning curve: a task adapter on the bare encoder (no language adapter) vs full fine-tuning, at each
#      training size of SIZES x SEEDS, rates ADAPTER_LR and FULL_LR  -> REPORTS/report.md, pos_curve.png;
#   2. learning-rate sensitivity: the same two rows at LR_SIZE examples, at each pair of ADAPTER_LRS and FULL_LRS
#      (the i-th adapter rate runs beside the i-th full rate) x SEEDS  -> REPORTS/lr_sensitivity.{png,json,md}.
# The pair (ADAPTER_LR, FULL_LR) at LR_SIZE is the learning curve's run, not trained again.  Every run is
# POS_STEPS steps x 16 sentences x 64 tokens, as e5_pos.sh.  Needs the base and head of e5_pos.sh (BASE, HEAD_DIR).
# Variables: recipes/xling/e5_common.sh (study_setup: WORK, REPORTS, SIZES, SEEDS, ADAPTER_LR, FULL_LR), and
#   POS_STEPS    steps of every run                                  [60]
#   LR_SIZE      training size of the learning-rate sweep            [all]
#   ADAPTER_LRS  task adapter rates (one per FULL_LRS entry)         [1e-4 1e-3 1e-2]
#   FULL_LRS     full fine-tuning rates                              [1e-5 5e-5 2e-4]
#   LR_LANG      language whose accuracy is plotted                  [tr]
set -euo pipefail
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
POS_STEPS="${POS_STEPS:-60}"
LR_SIZE="${LR_SIZE:-all}"
ADAPTER_LRS="${ADAPTER_LRS:-1e-4 1e-3 1e-2}"
FULL_LRS="${FULL_LRS:-1e-5 5e-5 2e-4}"
LR_LANG="${LR_LANG:-tr}"
COMPARE_ROWS="bare_task full"
REUSE_DEMO="${REUSE_DEMO:-0}"
WORK="${WORK:-$ROOT/work/xling-e5-he2021}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_he2021}"
study_setup
read -r -a alrs <<< "$ADAPTER_LRS"; read -r -a flrs <<< "$FULL_LRS"
[ "${#alrs[@]}" = "${#flrs[@]}" ] || { echo "ADAPTER_LRS and FULL_LRS need as many rates each" >&2; exit 1; }
CURVE_WORK=$WORK
for size in $SIZES; do
  for seed in $SEEDS; do
    log "learning curve: pos n=$size seed $seed (adapter lr $ADAPTER_LR, full lr $FULL_LR)"
    compare pos "$size" "$seed" "$POS_STEPS" 64 "$ADAPTER_LR" "$FULL_LR" 16 en tr
    rm -rf "$WORK"/runs/*/checkpoints
  done
done
study_report
specs=()
for i in "${!alrs[@]}"; do
  WORK=$CURVE_WORK
  [ "${alrs[$i]}" = "$ADAPTER_LR" ] && [ "${flrs[$i]}" = "$FULL_LR" ] || WORK="$CURVE_WORK/lr-${alrs[$i]}-${flrs[$i]}"
  mkdir -p "$WORK/logs"
  for seed in $SEEDS; do
    log "learning rates: pos n=$LR_SIZE seed $seed (adapter lr ${alrs[$i]}, full lr ${flrs[$i]})"
    compare pos "$LR_SIZE" "$seed" "$POS_STEPS" 64 "${alrs[$i]}" "${flrs[$i]}" 16 en tr
    rm -rf "$WORK"/runs/*/checkpoints
  done
  specs+=("$WORK/results=${alrs[$i]},${flrs[$i]}")
done
quiet "$CURVE_WORK/logs/lr_sensitivity.log" "${STUDY[@]}" studies.xling_lr_sweep from-comparison "${specs[@]}" \
  --language "$LR_LANG" --train-size "$LR_SIZE" --output "$REPORTS/lr_sensitivity.png"
echo "report: $REPORTS/report.md, $REPORTS/lr_sensitivity.md"
