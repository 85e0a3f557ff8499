# The translation demo's fairseq flags and its helpers (train, adapter_run, full_finetune_run, generate), shared
# by recipes/demo.sh and recipes/nmt/*.sh.  Source it after setting BIN, DATA, CKPT, GEN, USER_DIR and LANG_LIST.
# shellcheck shell=bash

SHAPE=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 128 --decoder-embed-dim 128
       --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4
       --decoder-attention-heads 4 --share-all-embeddings)
MULTI=(--langs "$LANG_LIST" --encoder-langtok tgt --sampling-method temperature --sampling-temperature 1.5)
TRAIN=(--optimizer adam --adam-betas '(0.9,0.98)' --lr-scheduler inverse_sqrt --criterion label_smoothed_cross_entropy
       --label-smoothing 0.1 --dropout 0.1 --max-tokens 2048 --no-epoch-checkpoints
       --log-format simple --log-interval 50 --num-workers 0 --disable-validation)
DEVICE=()
"$BIN/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || DEVICE=(--cpu)
TRAIN+=("${DEVICE[@]}")

# fairseq checkpoints hold argparse.Namespace objects: torch >= 2.6 loads them only with the
# plugin's safe-globals list, so every fairseq command below loads the plugin (--user-dir).
train() { # name args...: fairseq-train unless that run finished already (an interrupted one resumes)
  local name=$1; shift
  if [ -f "$CKPT/$name/checkpoint_last.pt" ] && [ -f "$CKPT/$name/done" ]; then echo "$name: done already"; return; fi
  "$BIN/fairseq-train" "$DATA/bin" --user-dir "$USER_DIR" --save-dir "$CKPT/$name" "$@" \
    2>&1 | tee "$CKPT/$name.log" | grep -E "num. shared|trainable parameters|done training" || true
  [ -f "$CKPT/$name/checkpoint_last.pt" ] || { echo "training $name failed: see $CKPT/$name.log" >&2; exit 1; }
  touch "$CKPT/$name/done"
}

adapter_run() { # name base-checkpoint lang-pairs by dim seed updates lr [flags...]: adapters on the frozen base,
  # by pair (Bapna & Firat 2019) or by lang (Philip et al. 2020: encoder by source, decoder by target language)
  train "$1" --max-update "$7" --task adapter_translation --enable-lang-ids "${MULTI[@]}" --arch adapter_transformer \
    "${SHAPE[@]}" --finetune-from-model "$2" "${TRAIN[@]}" --no-save-optimizer-state --lang-pairs "$3" \
    --adapters-by "$4" --adapter-dim "$5" --seed "$6" --lr "$8" --warmup-updates 50 "${@:9}"
}

full_finetune_run() { # name base-checkpoint pair seed updates lr: every base weight trained on one pair
  train "$1" --max-update "$5" --task translation_multi_simple_epoch --lang-pairs "$3" "${MULTI[@]}" --arch transformer \
    "${SHAPE[@]}" --finetune-from-model "$2" "${TRAIN[@]}" --no-save-optimizer-state --seed "$4" --lr "$6" \
    --warmup-updates 50
}

generate() { # system checkpoint directions data task-args...: nmt generate-many (beam 5, every sentence),
  # unless it finished already ($GEN/<system>/done, written after a generation that succeeded)
  local system=$1 checkpoint=$2 directions=$3 data=$4; shift 4
  if [ -f "$GEN/$system/done" ] && [ "$GEN/$system/done" -nt "$checkpoint" ]; then return; fi
  rm -f "$GEN/$system/done"
  "$BIN/nmt" generate-many "$data" --path "$checkpoint" --directions "$directions" --output-dir "$GEN/$system" \
    -- --user-dir "$USER_DIR" --beam 5 --max-len-a 1.5 --max-len-b 10 --max-tokens 4000 \
    --remove-bpe sentencepiece --num-workers 0 "${DEVICE[@]}" "${MULTI[@]}" "$@" > "$GEN/$system.log" 2>&1 \
    || { tail -20 "$GEN/$system.log" >&2; echo "generation for $system failed" >&2; exit 1; }
  touch "$GEN/$system/done"
}
