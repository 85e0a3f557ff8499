# Shared part of the nmt recipes (sourced by pair_adapters.sh, domain_adapters.sh, monolingual_adapters.sh).
#
# Two kinds of base model:
#   BASE=own          a fairseq `transformer` you trained with translation_multi_simple_epoch on data made by
#                     `data-prep spm-bin` (BASE_DATA is that output folder: spm.model, dict.txt, bin/, langs.txt)
#                     and the shape flags in BASE_SHAPE (the demo's base by default: recipes/demo.sh).
#   BASE=m2m100_418m  a pretrained M2M-100 (Fan et al. 2021) you downloaded from
#   BASE=m2m100_1_2b  https://github.com/facebookresearch/fairseq/tree/main/examples/m2m_100 into M2M_DIR:
#                     418M_last_checkpoint.pt or 1.2B_last_checkpoint.pt, spm.128k.model, data_dict.128k.txt
#                     and model_dict.128k.txt.  The adapter model uses the architectures adapter_m2m100_418m /
#                     adapter_m2m100_1_2b (nmt/models/architectures.py), whose shapes are the checkpoints'.
# fairseq checkpoints are pickles: use only checkpoints from a trusted source.
#
# Variables (defaults in brackets):
#   BIN          folder of the console scripts                           [<repo>/.venv/bin]
#   BASE         own | m2m100_418m | m2m100_1_2b                         [own]
#   BASE_DATA    own base: the data-prep spm-bin folder                  [work/demo/bin]
#   BASE_CKPT    the base checkpoint                                     [own: work/demo/checkpoints/base/checkpoint_last.pt;
#                                                                         M2M: $M2M_DIR/418M_last_checkpoint.pt or 1.2B_...]
#   BASE_SHAPE   own base: its shape flags                               [the demo's: 3+3 layers, d 128, FFN 512, 4 heads]
#   M2M_DIR      folder with the M2M-100 files                           [models/m2m100]
#   RAW          raw parallel text, data_prep layout <split>.<a>-<b>.<lang> [own: work/demo/raw; M2M: data/nmt/raw]
#   WORK         binarised data, checkpoints, generations                [work/nmt]
#   REPORTS      reports (nmt report)                                    [reports/nmt]
#   LANGTOK      language-token flags of the base                        [--encoder-langtok src --decoder-langtok]
#   TRAIN_FLAGS  optimiser flags of adapter training                     [adam, lr 1e-3, inverse_sqrt, warm-up 500,
#                                                                         label smoothing 0.1, --max-tokens 4096]
#   GEN_FLAGS    generation flags                                        [--beam 5 --max-tokens 8000]
#   DEVICE       extra device flags                                      [--cpu when torch sees no GPU, else none]

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
BASE="${BASE:-own}"
M2M_DIR="${M2M_DIR:-$ROOT/models/m2m100}"
WORK="${WORK:-$ROOT/work/nmt}"
REPORTS="${REPORTS:-$ROOT/reports/nmt}"
LANGTOK="${LANGTOK:---encoder-langtok src --decoder-langtok}"
TRAIN_FLAGS="${TRAIN_FLAGS:---optimizer adam --adam-betas (0.9,0.98) --lr 1e-3 --lr-scheduler inverse_sqrt --warmup-updates 500 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 --dropout 0.1 --max-tokens 4096 --save-interval-updates 500 --keep-interval-updates 1 --no-epoch-checkpoints --log-format simple --log-interval 50 --seed 1}"
GEN_FLAGS="${GEN_FLAGS:---beam 5 --max-tokens 8000 --max-len-a 1.5 --max-len-b 10}"
case "$BASE" in
  own)
    BASE_DATA="${BASE_DATA:-$ROOT/work/demo/bin}"
    BASE_CKPT="${BASE_CKPT:-$ROOT/work/demo/checkpoints/base/checkpoint_last.pt}"
    BASE_SHAPE="${BASE_SHAPE:---encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4 --decoder-attention-heads 4 --share-all-embeddings}"
    RAW="${RAW:-$ROOT/work/demo/raw}"
    ARCH=adapter_transformer
    SPM="$BASE_DATA/spm.model"; DICT="$BASE_DATA/dict.txt"
    LANG_FLAGS=(--langs "$(cat "$BASE_DATA/langs.txt" 2>/dev/null || echo "")") ;;
  m2m100_418m|m2m100_1_2b)
    [ "$BASE" = m2m100_418m ] && size=418M || size=1.2B
    BASE_CKPT="${BASE_CKPT:-$M2M_DIR/${size}_last_checkpoint.pt}"
    BASE_SHAPE="${BASE_SHAPE:-}"
    RAW="${RAW:-$ROOT/data/nmt/raw}"
    ARCH="adapter_$BASE"
    SPM="$M2M_DIR/spm.128k.model"; DICT="$M2M_DIR/data_dict.128k.txt"
    # The 100 language codes are the __xx__ tokens of the model dictionary.
    LANG_FLAGS=(--langs "$( (sed -n 's/^__\([A-Za-z_]*\)__ .*/\1/p' "$M2M_DIR/model_dict.128k.txt" 2>/dev/null || true) | paste -sd, -)"
                --fixed-dictionary "$M2M_DIR/model_dict.128k.txt") ;;
  *) echo "BASE=$BASE: expected own, m2m100_418m or m2m100_1_2b" >&2; exit 1 ;;
esac
if [ -z "${DEVICE+x}" ]; then
  DEVICE="$("$BIN/python" -c 'import torch; print("" if torch.cuda.is_available() else "--cpu")')"
fi
USER_DIR="$("$BIN/nmt" user-dir)"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"

say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }

check_inputs() { # the files every recipe needs
  [ -f "$BASE_CKPT" ] || die "base checkpoint not found: $BASE_CKPT (set BASE_CKPT; BASE=$BASE)"
  [ -f "$SPM" ] || die "SentencePiece model not found: $SPM (BASE=$BASE: set BASE_DATA or M2M_DIR)"
  [ -f "$DICT" ] || die "dictionary not found: $DICT"
  [ "$BASE" = own ] || [ -f "$M2M_DIR/model_dict.128k.txt" ] || die "not found: $M2M_DIR/model_dict.128k.txt"
  [ -d "$RAW" ] || die "raw text folder not found: $RAW (set RAW; layout <split>.<a>-<b>.<lang>)"
}

binarise() { # raw_dir out_dir pair...: encode with the base's SentencePiece model, binarise with its dictionary
  local raw=$1 out=$2; shift 2
  mkdir -p "$out/spm"
  for pair in "$@"; do
    [ -f "$out/done.$pair" ] && continue
    local a=${pair%-*} b=${pair#*-} prefixes=()
    for split in train valid test; do
      [ -f "$raw/$split.$pair.$a" ] || continue
      for lang in "$a" "$b"; do
        [ -f "$out/spm/$split.$pair.$lang" ] || "$BIN/python" - "$SPM" "$raw/$split.$pair.$lang" "$out/spm/$split.$pair.$lang" <<'PY'
import os, sys
import sentencepiece
model = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as source, open(sys.argv[3] + ".tmp", "w", encoding="utf-8") as target:
    for line in source:
        target.write(" ".join(model.encode(line.rstrip("\n"), out_type=str)) + "\n")
os.replace(sys.argv[3] + ".tmp", sys.argv[3])
PY
      done
      prefixes+=("--${split}pref" "$out/spm/$split.$pair")
    done
    [ ${#prefixes[@]} -gt 0 ] || die "no <split>.$pair.$a files in $raw"
    "$BIN/fairseq-preprocess" --source-lang "$a" --target-lang "$b" "${prefixes[@]}" --srcdict "$DICT" \
      --tgtdict "$DICT" --destdir "$out/bin" --workers 4 > "$out/preprocess.$pair.log" 2>&1 \
      || { tail -5 "$out/preprocess.$pair.log" >&2; die "fairseq-preprocess $pair failed"; }
    touch "$out/done.$pair"
  done
}

train() { # name data_bin args...: adapter training from the base, skipped when done; an interrupted run resumes
  local name=$1 data=$2; shift 2
  local dir="$WORK/checkpoints/$name"
  if [ -f "$dir/done" ]; then echo "$name: trained already ($dir)"; return; fi
  # shellcheck disable=SC2086  # the *_FLAGS variables are word lists
  "$BIN/fairseq-train" "$data" --user-dir "$USER_DIR" --task adapter_translation "${LANG_FLAGS[@]}" $LANGTOK \
    --arch "$ARCH" $BASE_SHAPE --finetune-from-model "$BASE_CKPT" $TRAIN_FLAGS $DEVICE --save-dir "$dir" "$@" \
    2>&1 | tee -a "$dir.log" | grep -E "train_inner|trainable|done training" || true
  [ -f "$dir/checkpoint_last.pt" ] || die "training $name failed: see $dir.log"
  touch "$dir/done"
}

generate() { # system data_bin checkpoint src-tgt task_args...: one fairseq-generate output, skipped when present
  local system=$1 data=$2 checkpoint=$3 direction=$4; shift 4
  local out="$WORK/generate/$system/generate-$direction.txt"
  [ -s "$out" ] && return
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086
  "$BIN/fairseq-generate" "$data" --user-dir "$USER_DIR" "${LANG_FLAGS[@]}" $LANGTOK --path "$checkpoint" \
    --gen-subset test -s "${direction%-*}" -t "${direction#*-}" --remove-bpe sentencepiece \
    --required-batch-size-multiple 1 $GEN_FLAGS $DEVICE "$@" \
    > "$out.tmp" 2> "$out.log" || { tail -5 "$out.log" >&2; die "fairseq-generate $system $direction failed"; }
  mv "$out.tmp" "$out"
}

# Bottleneck width for a pair: pairs.conf when listed, else sized by training data as Bapna & Firat (2019)
# size theirs by resource level (larger adapters for high-resource pairs).
adapter_dim_for() { # pair data_lines
  local pair=$1 lines=$2 listed
  listed="$(awk -v p="$pair" '$1 == p {print $2}' "$(dirname "${BASH_SOURCE[0]}")/pairs.conf")"
  if [ -n "$listed" ]; then echo "$listed"
  elif [ "$lines" -lt 100000 ]; then echo 64
  elif [ "$lines" -lt 1000000 ]; then echo 256
  else echo 1024; fi
}
