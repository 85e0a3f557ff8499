#!/usr/bin/env bash
# Why did pair adapters barely learn on the low-resource pair?  One base checkpoint, one pair, equal updates:
#   pair adapter (Bapna & Firat, d=64) at learning rates 1e-3, 5e-3 and 1e-2; at 1e-3 with the token embeddings
#   and output projection trained too (--adapter-train-embeddings, a diagnostic: 31% of the weights); and full
#   fine-tuning at 5e-4.  Writes reports/nmt_diagnostics/ (nmt report tables + final training losses).
#
#   bash recipes/nmt/adapter_diagnostics.sh BASE_CHECKPOINT [PAIR]
# Variables: DATA (the demo's spm-bin folder) [work/demo/bin], RAW [work/demo/raw], UPDATES [300],
# OUT [work/nmt_diagnostics], REPORT [reports/nmt_diagnostics].  The base must have the demo's shape.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
BASE="$1"; PAIR="${2:-en-ar}"
DATA="${DATA:-$ROOT/work/demo/bin}"; RAW="${RAW:-$ROOT/work/demo/raw}"; UPDATES="${UPDATES:-300}"
OUT="${OUT:-$ROOT/work/nmt_diagnostics}"; REPORT="${REPORT:-$ROOT/reports/nmt_diagnostics}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" PYTHONWARNINGS=ignore
USER_DIR="$("$BIN/nmt" user-dir)"
SHAPE=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512
       --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-all-embeddings)
MULTI=(--langs "$(cat "$DATA/langs.txt")" --encoder-langtok tgt --sampling-method temperature --sampling-temperature 1.5)
TRAIN=(--optimizer adam --adam-betas '(0.9,0.98)' --lr-scheduler inverse_sqrt --warmup-updates 50
       --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --dropout 0.1 --max-tokens 2048
       --no-epoch-checkpoints --no-save-optimizer-state --log-format simple --log-interval 50 --num-workers 0
       --seed 1 --cpu --disable-validation --max-update "$UPDATES" --finetune-from-model "$BASE" --lang-pairs "$PAIR")
ADAPTER=(--task adapter_translation --enable-lang-ids --arch adapter_transformer --adapters-by pair --adapter-dim 64)
run() { # name args...: train (skipped when done) and translate the pair's test set
  local name=$1; shift
  [ -f "$OUT/$name/checkpoint_last.pt" ] || "$BIN/fairseq-train" "$DATA/bin" --user-dir "$USER_DIR" \
    --save-dir "$OUT/$name" "${SHAPE[@]}" "${MULTI[@]}" "${TRAIN[@]}" "$@" > "$OUT/$name.log" 2>&1
  local task=(--task translation_multi_simple_epoch); [[ " $* " == *" adapter_translation "* ]] && task=(--task adapter_translation --enable-lang-ids)
  "$BIN/nmt" generate-many "$DATA/bin" --path "$OUT/$name/checkpoint_last.pt" --directions "$PAIR" --output-dir "$OUT/gen/$name" \
    -- --user-dir "$USER_DIR" "${task[@]}" --lang-pairs "$PAIR" "${MULTI[@]}" --beam 5 --max-len-a 1.5 --max-len-b 10 \
    --max-tokens 4000 --remove-bpe sentencepiece --num-workers 0 --cpu > "$OUT/gen/$name.log" 2>&1
}
mkdir -p "$OUT/gen" "$REPORT"
"$BIN/nmt" generate-many "$DATA/bin" --path "$BASE" --directions "$PAIR" --output-dir "$OUT/gen/base" -- --user-dir "$USER_DIR" \
  --task translation_multi_simple_epoch --lang-pairs "$PAIR" "${MULTI[@]}" --beam 5 --max-len-a 1.5 --max-len-b 10 \
  --max-tokens 4000 --remove-bpe sentencepiece --num-workers 0 --cpu > "$OUT/gen/base.log" 2>&1
run adapter_lr1e-3 "${ADAPTER[@]}" --lr 1e-3
run adapter_lr5e-3 "${ADAPTER[@]}" --lr 5e-3
run adapter_lr1e-2 "${ADAPTER[@]}" --lr 1e-2
run adapter_lr1e-3_embeddings "${ADAPTER[@]}" --lr 1e-3 --adapter-train-embeddings
run full_finetune_lr5e-4 --task translation_multi_simple_epoch --arch transformer --lr 5e-4
"$BIN/nmt" report $(for d in "$OUT"/gen/*/; do printf -- '--system %s=%s ' "$(basename "$d")" "$d"; done) \
  --raw-dir "$RAW" --output-dir "$REPORT"
for log in "$OUT"/*.log; do  # the last logged training loss of each run
  printf '%s\t%s\n' "$(basename "$log" .log)" "$(grep -oE 'num_updates=[0-9]+|trainable parameters: [0-9,]+ of [0-9,]+ \([0-9.]+%\)| loss=[0-9.]+' "$log" | tail -3 | paste -sd' ')"
done > "$REPORT/training_loss.tsv"
