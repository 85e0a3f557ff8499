#!/usr/bin/env bash
# K-Adapter (Wang et al. 2021) beside the plain task adapter on multilingual-e5-small: universal POS tags (12),
# Brown (en) -> Turkish (tr), the data, steps, batch and seeds of recipes/xling/e5_pos.sh.  Both train over the
# frozen English language adapter (the K-adapter reads the encoder with it active, as the task adapter sits above
# it) and both are scored with it (no swap) and with the Turkish one swapped in.  Needs the base of
# recipes/demo_xling.sh (BASE) with the en and tr language adapters (e5_pos.sh trains tr).  Variables:
# recipes/xling/e5_common.sh, and
#   POS_STEPS       steps of both adapters (batch 16, 64 tokens)               [60]
#   K_ADAPTER_LR    learning rate of the K-adapter                              [ADAPTER_LR, as the task adapter]
#   K_ADAPTER_DIM   width inside its adapter layers, a multiple of 12 [the paper's 768 scaled to hidden 384: 288]
#   K_ADAPTER_LAYERS  hidden states its adapter layers read, e.g. "12" (0: embeddings) [the paper's scaled: 0 6 11]
#   WORK, REPORTS   runs and results; report folder   [work/xling-e5-kadapter, reports/xling_e5_kadapter]
#   TASK_ADAPTER_RESULTS  results folder of an earlier run of this recipe whose task adapter rows (no_swap, madx)
#                   are copied instead of trained again (same data, steps, seeds)      [none]
set -euo pipefail
source "$(dirname "$0")/e5_common.sh"
POS_STEPS="${POS_STEPS:-60}"
WORK="${WORK:-$ROOT/work/xling-e5-kadapter}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_kadapter}"
SIZES=all
study_setup
K_ADAPTER_LR="${K_ADAPTER_LR:-$ADAPTER_LR}"
K_ADAPTER_FLAGS=()
[ -z "${K_ADAPTER_DIM:-}" ] || K_ADAPTER_FLAGS+=(--k-adapter-dim "$K_ADAPTER_DIM")
# shellcheck disable=SC2206  # the layers are words
[ -z "${K_ADAPTER_LAYERS:-}" ] || K_ADAPTER_FLAGS+=(--k-adapter-layers $K_ADAPTER_LAYERS)
for lang in en tr; do language_adapter "$lang"; done

train="$(train_file pos all)"
results="$WORK/results"
data=("en=$DATA/pos.test.en.pos" "tr=$DATA/pos.test.tr.pos")
adapters=("en=$BASE/lang-en/adapter" "tr=$BASE/lang-tr/adapter")
for row in no_swap madx; do
  [ -z "${TASK_ADAPTER_RESULTS:-}" ] || { mkdir -p "$results/pos/$row"; cp -rn "$TASK_ADAPTER_RESULTS/pos/$row/nall" "$results/pos/$row/"; }
done
ls "$results/pos/majority/nall/"*.json > /dev/null 2>&1 || \
  quiet "$WORK/logs/baseline.log" "${CMP[@]}" baseline --task pos --train "$train" --data "${data[@]}" --train-size all \
    --output-dir "$results"

adapter_run() { # kind row lr seed [flags]: train one task adapter (bottleneck or k-adapter) and score it, unless done
  local kind=$1 row=$2 lr=$3 seed=$4 run="$WORK/runs/pos-$1-s$4"; shift 4
  [ -f "$results/pos/$row/nall/tr-seed$seed.json" ] && return
  log "pos $kind seed $seed"
  [ -f "$run/adapter/task.json" ] || quiet "$run.log" "$BIN/xling" train-task --task pos --adapter-kind "$kind" \
    --model "$MODEL" --lang-adapter "$BASE/lang-en/adapter" --train "$train" --max-steps "$POS_STEPS" --batch-size 16 \
    --max-length 64 --seed "$seed" --save-steps 100000 --learning-rate "$lr" --output-dir "$run" "$@"
  quiet "$run.eval.log" "${CMP[@]}" eval-adapter --model "$MODEL" --task-adapter "$run/adapter" \
    --lang-adapters "${adapters[@]}" --data "${data[@]}" --train-size all --max-length 64 --output-dir "$results"
}

for seed in $SEEDS; do
  adapter_run bottleneck no_swap "$ADAPTER_LR" "$seed"
  adapter_run k-adapter k_adapter "$K_ADAPTER_LR" "$seed" ${K_ADAPTER_FLAGS[@]+"${K_ADAPTER_FLAGS[@]}"}
done

# The K-adapter's sizes, and the trainable parameters: the adapter's tensors (adapter_config.json's count) plus
# its head (head.safetensors); the task adapter's come from the earlier run when its rows were copied.
seed1=${SEEDS%% *}
plain="$WORK/runs/pos-bottleneck-s$seed1/adapter"
[ -d "$plain" ] || plain="$(dirname "$TASK_ADAPTER_RESULTS")/runs/pos-bottleneck-s$seed1/adapter"
mapfile -t ABOUT < <("$BIN/python" - "$plain" "$WORK/runs/pos-k-adapter-s$seed1/adapter" <<'EOF'
import json, sys
from safetensors import safe_open
counts = []
for name, folder in zip(("task adapter (rf 16, in every layer)", "K-Adapter"), sys.argv[1:]):
    document = json.load(open(f"{folder}/adapter_config.json"))
    with safe_open(f"{folder}/head.safetensors", "pt") as head:
        head_count = sum(head.get_tensor(k).numel() for k in head.keys())
    counts.append(f"{name}: {document['num_parameters']:,} + head {head_count:,} = {document['num_parameters'] + head_count:,}")
c = document["config"]
print(f"adapter layers reading hidden states {', '.join(map(str, c['read_layers']))} (0: embeddings), each a "
      f"down-projection to {c['adapter_dim']}, {c['transformer_layers']} Transformer layers ({c['num_heads']} heads, "
      f"FFN {c['intermediate_dim']}) and an up-projection")
print("; ".join(counts))
EOF
)
quiet "$WORK/logs/report.log" "${CMP[@]}" report --results "$results" --output-dir "$REPORTS" \
  --title "K-Adapter beside the task adapter on multilingual-e5-small: POS, Brown (en) -> Turkish (tr)" \
  --note "$STUDY_NOTE" \
  --note "Both adapters: $POS_STEPS steps × 16 sentences × 64 tokens over the frozen English language adapter, \
seeds $SEEDS; task adapter lr $ADAPTER_LR, K-Adapter lr $K_ADAPTER_LR. K-Adapter (Wang et al. 2021): ${ABOUT[0]}; \
its output concatenated with the last hidden state for the tagging head. Trainable parameters: ${ABOUT[1]}."
echo "report: $REPORTS/report.md"
