#!/usr/bin/env bash
# He et al. (2021), "On the Effectiveness of Adapter-based Tuning for Pretrained Language Model Adaptation"
# (ACL 2021): adapter tuning beats full fine-tuning in low-resource and cross-lingual settings, and is less
# sensitive to the learning rate.  On POS (Brown en -> Turkish tr) or proper names (Brown en -> the Turkish
# treebanks' names, BIGBENCH=0), zero-shot, on multilingual-e5-small:
#   1. learning curve: a task adapter on the bare encoder (no language adapter) vs full fine-tuning, at each
#      training size of SIZES x SEEDS, rates ADAPTER_LR and FULL_LR  -> REPORTS/report.md, <task>_curve.png;
#      at SWAP_SIZE the same seeds also train the MAD-X rows (no swap, swap: Pfeiffer et al. 2020) with the
#      language adapters of LANG_ROOT, so the swap is measured beside the same runs;
#   2. learning-rate sensitivity: the same two rows at LR_SIZE examples, at each pair of ADAPTER_LRS and FULL_LRS
#      (the i-th adapter rate runs beside the i-th full rate) x SEEDS  -> REPORTS/lr_sensitivity.{png,json,md};
#   3. the claims H1-H3 with their seed spreads (studies.xling_he2021_summary)  -> REPORTS/he2021.{md,json}.
# The pair (ADAPTER_LR, FULL_LR) at LR_SIZE is the learning curve's run, not trained again.  Every run is
# STEPS steps x 16 sentences x 64 tokens, as e5_pos.sh / e5_ner.sh.  Needs the base and head of e5_pos.sh
# (BASE, HEAD_DIR).
# Variables: recipes/xling/e5_common.sh (study_setup: WORK, REPORTS, SIZES, SEEDS, ADAPTER_LR, FULL_LR), and
#   TASK         pos or ner (names; with BIGBENCH=0 en -> tr, the POS-only base's)   [pos]
#   POS_STEPS, NER_STEPS  steps of every run of the task                            [60, 100]
#   SWAP_SIZE    training size whose seeds also train the MAD-X rows; empty: none   [all]
#   LR_SIZE      training size of the learning-rate sweep                            [all]
#   ADAPTER_LRS  task adapter rates (one per FULL_LRS entry)                         [1e-4 1e-3 1e-2]
#   FULL_LRS     full fine-tuning rates                                              [1e-5 5e-5 2e-4]
#   LR_LANG      language whose score is plotted                                     [tr]
set -euo pipefail
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
TASK="${TASK:-pos}"
SWAP_SIZE="${SWAP_SIZE-all}"
LR_SIZE="${LR_SIZE:-all}"
ADAPTER_LRS="${ADAPTER_LRS:-1e-4 1e-3 1e-2}"
FULL_LRS="${FULL_LRS:-1e-5 5e-5 2e-4}"
LR_LANG="${LR_LANG:-tr}"
COMPARE_ROWS="bare_task full"  # the learning-rate sweep's rows (the curve sets its own)
REUSE_DEMO="${REUSE_DEMO:-0}"
WORK="${WORK:-$ROOT/work/xling-e5-he2021}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_he2021}"
study_setup
case $TASK in
  pos) STEPS="${POS_STEPS:-60}"; LANGS=(en tr) ;;
  ner) STEPS="${NER_STEPS:-100}"; LANGS=(en tr)
       [ "$BIGBENCH" = 0 ] || { echo "TASK=ner here needs BIGBENCH=0 (names en -> tr on the POS-only base)" >&2; exit 1; }
       names_data ;;
  *) echo "TASK must be pos or ner, got '$TASK'" >&2; exit 1 ;;
esac
[ -z "$SWAP_SIZE" ] || for lang in "${LANGS[@]}"; do language_adapter "$lang"; done
read -r -a alrs <<< "$ADAPTER_LRS"; read -r -a flrs <<< "$FULL_LRS"
[ "${#alrs[@]}" = "${#flrs[@]}" ] || { echo "ADAPTER_LRS and FULL_LRS need as many rates each" >&2; exit 1; }
CURVE_WORK=$WORK
for size in $SIZES; do
  for seed in $SEEDS; do
    log "learning curve: $TASK n=$size seed $seed (adapter lr $ADAPTER_LR, full lr $FULL_LR)"
    rows="bare_task full"; [ "$size" != "$SWAP_SIZE" ] || rows="bare_task madx full"
    COMPARE_ROWS=$rows compare "$TASK" "$size" "$seed" "$STEPS" 64 "$ADAPTER_LR" "$FULL_LR" 16 "${LANGS[@]}"
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
    log "learning rates: $TASK n=$LR_SIZE seed $seed (adapter lr ${alrs[$i]}, full lr ${flrs[$i]})"
    compare "$TASK" "$LR_SIZE" "$seed" "$STEPS" 64 "${alrs[$i]}" "${flrs[$i]}" 16 "${LANGS[@]}"
    rm -rf "$WORK"/runs/*/checkpoints
  done
  specs+=("$WORK/results=${alrs[$i]},${flrs[$i]}")
done
quiet "$CURVE_WORK/logs/lr_sensitivity.log" "${STUDY[@]}" studies.xling_lr_sweep from-comparison "${specs[@]}" \
  --language "$LR_LANG" --train-size "$LR_SIZE" --output "$REPORTS/lr_sensitivity.png"
quiet "$CURVE_WORK/logs/he2021.log" "${STUDY[@]}" studies.xling_he2021_summary --results "$CURVE_WORK/results" \
  --task "$TASK" --language "$LR_LANG" --lr-sensitivity "$REPORTS/lr_sensitivity.json" --output-dir "$REPORTS"
echo "report: $REPORTS/report.md, $REPORTS/lr_sensitivity.md, $REPORTS/he2021.md (H1-H3)"
