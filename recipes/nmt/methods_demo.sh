#!/usr/bin/env bash
# More methods of the seed survey, on the demo's models (run `make demo` first): for the demo's low-resource
# pair (en-ar by default), against the demo's Bapna & Firat pair adapter and Philip et al.
# language adapters:
#
#   - Compacter++ pair adapter      (--adapter-kind compacter++)
#   - AdapterDrop, specialised      (--adapter-drop-mode specialised, 1 and 2 of 3 layers)
#   - AdapterFusion of the target-language adapters for ar, over ar,de,es,fr,sv,uk
#                                   (--adapter-fusion-keys/--adapter-fusion-over) + nmt fusion-weights
#   - layer ablation of the pair adapter (nmt ablate: every span of layers left out, BLEU change)
#
# and writes reports/nmt_methods/ (README.md with the tables, nmt report output, heatmaps).
# Every training run has the demo's update budget; steps already done are skipped.
# About 12 minutes on 2 cores.  Variables (defaults in brackets):
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
BIN="${BIN:-$ROOT/.venv/bin}"                       # [.venv/bin]
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
DEMO="${DEMO_WORK:-work/demo}"                       # [work/demo] the demo's data and checkpoints
WORK="${METHODS_WORK:-work/nmt_methods}"               # [work/nmt_methods] checkpoints and translations made here
REPORT="${METHODS_REPORT:-reports/nmt_methods}"        # [reports/nmt_methods]
PAIR="${DEMO_PAIR:-en-ar}"                           # [en-ar] the low-resource pair of the demo
UPDATES="${DEMO_ADAPTER_UPDATES:-100}"               # [100] updates of each run, as the demo's adapters
THREADS="${BEYOND_THREADS:-1}"                       # [1] threads per process (two processes run at once)
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" PYTHONWARNINGS=ignore

DATA="$DEMO/bin/bin"; CKPT="$WORK/checkpoints"; GEN="$WORK/generate"
for path in "$DATA" "$DEMO/checkpoints/base/checkpoint_last.pt" "$DEMO/checkpoints/pair_adapter/checkpoint_last.pt" \
            "$DEMO/checkpoints/lang_adapters/checkpoint_last.pt"; do
  [ -e "$path" ] || { echo "methods_demo.sh: $path not found; run make demo first (or set DEMO_WORK)" >&2; exit 1; }
done
USER_DIR="$("$BIN/nmt" user-dir)"
LANG_LIST="$(cat "$DEMO/bin/langs.txt")"
TGT="${PAIR#*-}"
OTHERS="$(echo "$LANG_LIST" | tr ',' '\n' | grep -vx "en" | grep -vx "$TGT" | paste -sd, -)"
mkdir -p "$CKPT" "$GEN" "$REPORT"
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }
DEVICE=()
"$BIN/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || DEVICE=(--cpu)

# The demo's shapes and training flags (recipes/demo.sh).
SHAPE=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 128 --decoder-embed-dim 128
       --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4
       --decoder-attention-heads 4 --share-all-embeddings)
MULTI=(--langs "$LANG_LIST" --encoder-langtok tgt --sampling-method temperature --sampling-temperature 1.5)
TRAIN=(--optimizer adam --adam-betas '(0.9,0.98)' --lr-scheduler inverse_sqrt --criterion label_smoothed_cross_entropy
       --label-smoothing 0.1 --dropout 0.1 --max-tokens 2048 --no-epoch-checkpoints --log-format simple
       --log-interval 25 --num-workers 0 --seed 1 --disable-validation --max-update "$UPDATES"
       --lr 1e-3 --warmup-updates 50 "${DEVICE[@]}")
COMMON=(--task adapter_translation --enable-lang-ids "${MULTI[@]}" --arch adapter_transformer "${SHAPE[@]}")

train() { # name args...
  local name=$1; shift
  if [ -f "$CKPT/$name/done" ]; then echo "$name: done already"; return; fi
  "$BIN/fairseq-train" "$DATA" --user-dir "$USER_DIR" --save-dir "$CKPT/$name" "$@" > "$CKPT/$name.log" 2>&1 \
    || { tail -20 "$CKPT/$name.log" >&2; echo "training $name failed: see $CKPT/$name.log" >&2; exit 1; }
  grep -E "trainable|done training" "$CKPT/$name.log" | sed "s/^/$name: /" | cut -c1-200
  touch "$CKPT/$name/done"
}
generate() { # system checkpoint args...
  local system=$1 checkpoint=$2; shift 2
  local out="$GEN/$system/generate-$PAIR.txt"
  [ -s "$out" ] && return
  mkdir -p "$GEN/$system"
  "$BIN/fairseq-generate" "$DATA" --user-dir "$USER_DIR" --path "$checkpoint" --gen-subset test \
    -s "${PAIR%-*}" -t "$TGT" --beam 5 --max-len-a 1.5 --max-len-b 10 --max-tokens 4000 --required-batch-size-multiple 1 \
    --remove-bpe sentencepiece --num-workers 0 "${DEVICE[@]}" --task adapter_translation --enable-lang-ids \
    --lang-pairs "$PAIR" "${MULTI[@]}" "$@" > "$out.tmp" 2> "$out.log"
  mv "$out.tmp" "$out"
}
link_demo() { # system: the demo's checkpoint (for the parameter counts)
  mkdir -p "$CKPT/$1"; ln -sf "$ROOT/$DEMO/checkpoints/$1/checkpoint_last.pt" "$CKPT/$1/checkpoint_last.pt"
}

say "Compacter++ and AdapterDrop pair adapters for $PAIR ($UPDATES updates each, two at a time)"
FROM_BASE=(--finetune-from-model "$DEMO/checkpoints/base/checkpoint_last.pt" --lang-pairs "$PAIR" --adapters-by pair
           --adapter-dim 64)
train compacter_pair "${COMMON[@]}" "${FROM_BASE[@]}" --adapter-kind compacter++ --adapter-phm-dim 4 "${TRAIN[@]}" &
train drop1_pair "${COMMON[@]}" "${FROM_BASE[@]}" --adapter-drop-mode specialised --adapter-drop-layers 1 "${TRAIN[@]}"
wait
train drop2_pair "${COMMON[@]}" "${FROM_BASE[@]}" --adapter-drop-mode specialised --adapter-drop-layers 2 "${TRAIN[@]}" &
say "AdapterFusion for target language $TGT over the language adapters $TGT,$OTHERS"
train fusion_lang "${COMMON[@]}" --finetune-from-model "$DEMO/checkpoints/lang_adapters/checkpoint_last.pt" \
  --lang-pairs "$PAIR" --adapters-by lang --adapter-dim 64 --adapter-encoder-keys "$LANG_LIST" \
  --adapter-decoder-keys "$LANG_LIST" --adapter-fusion-keys "$TGT" --adapter-fusion-over "$TGT,$OTHERS" "${TRAIN[@]}"
wait

say "translations of $PAIR test (beam 5), one system at a time"
link_demo pair_adapter; link_demo lang_adapters
for system in pair_adapter lang_adapters compacter_pair drop1_pair drop2_pair fusion_lang; do
  generate "$system" "$CKPT/$system/checkpoint_last.pt"
done

say "fusion weights and layer ablation"
"$BIN/nmt" fusion-weights --output-dir "$REPORT/fusion" -- "$DATA" --path "$CKPT/fusion_lang/checkpoint_last.pt" \
  --task adapter_translation --enable-lang-ids --lang-pairs "$PAIR" "${MULTI[@]}" -s "${PAIR%-*}" -t "$TGT" \
  --gen-subset valid --max-tokens 4000 --num-workers 0 "${DEVICE[@]}"
[ -f "$REPORT/ablation/ablation.json" ] || \
  "$BIN/nmt" ablate --output-dir "$REPORT/ablation" -- "$DATA" --path "$CKPT/pair_adapter/checkpoint_last.pt" \
    --task adapter_translation --enable-lang-ids --lang-pairs "$PAIR" "${MULTI[@]}" -s "${PAIR%-*}" -t "$TGT" \
    --gen-subset test --beam 5 --max-len-a 1.5 --max-len-b 10 --max-tokens 4000 --required-batch-size-multiple 1 --post-process sentencepiece \
    --num-workers 0 "${DEVICE[@]}"

say "BLEU report and summary"
"${STUDY[@]}" studies.nmt_report_spec --checkpoints "$CKPT" --generate "$GEN" --output "$WORK/spec.json"
"$BIN/nmt" report --spec "$WORK/spec.json" --raw-dir "$DEMO/raw" --supervised "$PAIR" --output-dir "$REPORT/bleu" > /dev/null
"${STUDY[@]}" studies.nmt_methods_summary --work "$WORK" --report "$REPORT" --pair "$PAIR"
say "done: $REPORT/README.md"
