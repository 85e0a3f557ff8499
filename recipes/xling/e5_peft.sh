#!/usr/bin/env bash
# LoRA and prefix tuning as task-learning rows on multilingual-e5-small (issue 29, item 1), beside the task
# adapter on the same bare encoder (the row bare_task) and full fine-tuning, with the same steps, batch,
# length and learning rate (hidden 384, 12 layers), sizes matched as closely as the methods allow:
#   bare_task           MAD-X task adapter rf 16 (m 24) at Pfeiffer's site: 12 x (2 x 384 x 24 + 24 + 384) = 226,080
#   bare_lora           LoRA (Hu et al. 2021), r LORA_RANK on W_q and W_v: 12 x 2 x r x (384 + 384) (r 12: 221,184)
#   bare_prefix_tuning  prefix tuning (Li & Liang 2021), l key + l value rows per layer: 12 x 2 x l x 384 (l 24:
#                       221,184 saved and run at inference); trained through Li & Liang's reparametrisation
#                       (PREFIX_MLP_DIM 512, AdapterHub's default: 4,934,144 weights in training), or with
#                       PREFIX_MLP_DIM=0 directly (AdapterHub's flat=True: 221,184 in training too)
# plus the prediction head in every row (POS: 12 tags, 4,620 weights).  No language adapters: each module
# learns the task on the bare encoder, and the target language is scored zero-shot.
#   TASK        pos (Brown en -> Turkish tr, POS_STEPS [60]) or ner (Brown names en -> Polish pl, NER_STEPS
#               [100], on the NER base of recipes/xling/e5_ner.sh: NER_BASE [work/xling-e5-ner]; with BIGBENCH=0
#               en -> Turkish tr, the treebanks' names, on BASE)                                        [pos]
#   LORA_RANK, LORA_ALPHA, PREFIX_LENGTH, PREFIX_MLP_DIM                                         [12, 8, 24, 512]
#   PEFT_ROWS   which of lora, prefix_tuning to train                                    [lora prefix_tuning]
#   COMPARE_ROWS  rows of e5_common.sh's compare() trained beside them                       [bare_task full]
# Variables of recipes/xling/e5_common.sh (BASE, BIN, HEAD_DIR, ...) and study_setup (WORK, REPORTS, SIZES,
# SEEDS, ADAPTER_LR, FULL_LR).  The base must exist (recipes/demo_xling.sh, or e5_ner.sh for names).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TASK="${TASK:-pos}"
[ "$TASK" != ner ] || [ "${BIGBENCH:-1}" = 0 ] || BASE="${NER_BASE:-$ROOT/work/xling-e5-ner}"
WORK="${WORK:-$ROOT/work/xling-e5-peft-$TASK}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_peft/$TASK}"
REUSE_DEMO="${REUSE_DEMO:-0}"
COMPARE_ROWS="${COMPARE_ROWS:-bare_task full}"
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
LORA_RANK="${LORA_RANK:-12}"; LORA_ALPHA="${LORA_ALPHA:-8}"
PREFIX_LENGTH="${PREFIX_LENGTH:-24}"; PREFIX_MLP_DIM="${PREFIX_MLP_DIM:-512}"
PEFT_ROWS="${PEFT_ROWS:-lora prefix_tuning}"
case $TASK in
  pos) STEPS="${POS_STEPS:-60}"; LEN=64; LANGS=(en tr); EXT=pos; SHORT=pos ;;
  ner) STEPS="${NER_STEPS:-100}"; LEN="${NER_MAX_LENGTH:-64}"; LANGS=(en pl); EXT=panx; SHORT=ner
       # BIGBENCH=0: Turkish names from the treebanks (data-prep names) on the POS-only base, instead of Polish
       [ "$BIGBENCH" = 1 ] || { LANGS=(en tr); names_data; } ;;
  *) echo "TASK must be pos or ner, got '$TASK'" >&2; exit 1 ;;
esac
study_setup
STUDY_NOTE="LoRA (r $LORA_RANK on W_q and W_v, alpha $LORA_ALPHA) and prefix tuning ($PREFIX_LENGTH key and value \
rows per layer, reparametrisation MLP width $PREFIX_MLP_DIM in training, 0 = rows trained directly), each on the bare \
encoder (no language adapter) like the task adapter of the row bare_task (MAD-X rf 16), $STEPS steps × 16 × $LEN \
tokens, lr $ADAPTER_LR; full fine-tuning lr $FULL_LR, the same steps. Base: $MODEL (trimmed encoder with its MLM \
head; no language adapters are used). ${STUDY_NOTE#*the same steps. }"  # the common note past its base and lrs

peft_rows() { # size seed: the LoRA and prefix-tuning rows of one training size and seed (eval-adapter: bare_<kind>)
  local size=$1 seed=$2 train run results="$WORK/results" data=() lang row kind
  train="$(train_file "$TASK" "$size")"
  for lang in "${LANGS[@]}"; do data+=("$lang=$DATA/$SHORT.test.$lang.$EXT"); done
  for kind in $PEFT_ROWS; do
    case $kind in
      lora) row=(--adapter-kind lora --adapter-dim "$LORA_RANK" --adapter-lora-alpha "$LORA_ALPHA") ;;
      prefix_tuning) row=(--adapter-kind prefix_tuning --adapter-dim "$PREFIX_LENGTH"
                          --adapter-prefix-mlp-dim "$PREFIX_MLP_DIM") ;;
      *) echo "unknown row '$kind' in PEFT_ROWS (lora, prefix_tuning)" >&2; exit 1 ;;
    esac
    [ ! -f "$results/$TASK/bare_$kind/n$size/${LANGS[1]}-seed$seed.json" ] || continue
    run="$WORK/runs/$TASK-n$size-s$seed-$kind"
    log "$TASK n=$size seed $seed: $kind"
    [ -f "$run/adapter/task.json" ] || quiet "$run.log" "$BIN/xling" train-task --task "$TASK" "${row[@]}" \
      --lang-adapter none --model "$MODEL" --train "$train" --max-steps "$STEPS" --batch-size 16 \
      --max-length "$LEN" --seed "$seed" --save-steps 100000 --learning-rate "$ADAPTER_LR" --output-dir "$run"
    quiet "$run.eval.log" "${CMP[@]}" eval-adapter --model "$MODEL" --task-adapter "$run/adapter" \
      --data "${data[@]}" --train-size "$size" --max-length "$LEN" --output-dir "$results"
    rm -rf "$run/checkpoints"
  done
}

peft_report() { # the report of every row so far: REPORTS/report.{json,md} and the bar chart
  quiet "$WORK/logs/report.log" "${CMP[@]}" report --results "$WORK/results" --output-dir "$REPORTS" \
    --title "LoRA and prefix tuning on multilingual-e5-small: $TASK, ${LANGS[0]} -> ${LANGS[1]}" --note "$STUDY_NOTE"
  echo "report: $REPORTS/report.md"
}

for size in $SIZES; do
  for seed in $SEEDS; do
    log "$TASK n=$size seed $seed"
    compare "$TASK" "$size" "$seed" "$STEPS" "$LEN" "$ADAPTER_LR" "$FULL_LR" 16 "${LANGS[@]}"
    peft_rows "$size" "$seed"
    rm -rf "$WORK"/runs/*/checkpoints
  done
  peft_report
done
