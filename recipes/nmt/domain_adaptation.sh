#!/usr/bin/env bash
# Domain adaptation of a trained multilingual base, Bapna & Firat (2019) style: on one pair the base knows, a
# domain adapter on the frozen base against full fine-tuning of every base weight, with the same in-domain data
# and the same updates, at several in-domain training sizes (He et al. 2021: adapters gain as the data shrinks).
#
#   PAIR=en-de DOMAIN_DIR=data/libreoffice-help recipes/nmt/domain_adaptation.sh
#   PAIR=en-de SRC_FILE=corpus.en TGT_FILE=corpus.de recipes/nmt/domain_adaptation.sh   (any aligned plain files)
#
# Rows: the base, the domain adapter, full fine-tuning, and copying the source.  Each trained system keeps its
# checkpoint with the best in-domain validation loss (checked every VALID_EVERY updates).  Scores: in-domain test
# BLEU and chrF++, and the general (the base's own test set) BLEU of the same models after adaptation, which is the
# forgetting full fine-tuning pays.  The summary (recipes/nmt/domain_adaptation_summary.py) reads every pair under
# WORK_ROOT and prints D1 and D2 as PASS, FAIL or n/a with their figures:
#   D1: domain adapter >= full fine-tuning - 0.5 BLEU (mean over seeds) at one size or more, on two pairs or more;
#   D2: adapter minus full fine-tuning is larger at the smallest size than at the largest (He et al. 2021).
# A relation holds only when its margin exceeds the spread over seeds (see the summary's docstring).
#
# Where this differs from Bapna & Firat (2019, sec. 5): their base is a large Transformer trained on WMT en-fr
# and their adapters adapt it to IWSLT and JRC-Acquis, with a bottleneck sized per domain and trained to
# convergence; here the base is the demo's 3+3-layer d 128 model trained on gettext UI strings, the budget is a
# fixed number of updates for every system (full fine-tuning gets the same updates, data and batch), and the
# adapter width is one number (ADAPTER_DIM) for every size.  Their placement is kept: one adapter after every
# encoder and decoder layer (layer norm, down-projection, ReLU, up-projection, residual), the base frozen.
#
# Inputs (one of the two):
#   DOMAIN_DIR   folder with {train,valid,test}.<PAIR>.<lang> (data-prep layout; e.g. `data-prep libreoffice-help`).
#                Training sizes take the first N training lines: libreoffice-help writes them in hash order.
#   SRC_FILE, TGT_FILE  aligned plain files: split by `data-prep parallel` (hash of the source) into WORK first
# Variables (defaults in brackets):
#   BIN          console scripts                                  [<repo>/.venv/bin]
#   PAIR         the language pair, source-target                 [en-de]
#   BASE_DATA    the base's `data-prep spm-bin` folder             [work/demo/bin]
#   BASE_CKPT    the base checkpoint                               [work/demo/checkpoints/base/checkpoint_last.pt]
#   GENERAL_RAW  raw folder with the base's own test.<PAIR>.*      [work/demo/raw]
#   SHAPE_FLAGS  the base's shape flags                            [the demo's: recipes/demo_lib.sh SHAPE]
#   SIZES        in-domain training sizes ("all" = every pair)    [1000,4000,all]
#   SEEDS        seeds of every trained system                    [1,2,3]
#   UPDATES      updates of every adapter and fine-tuning run     [300]
#   VALID_EVERY  validate and keep the best checkpoint every N    [50]
#   ADAPTER_DIM  domain adapter bottleneck                        [64]
#   ADAPTER_LR   adapter learning rate                            [1e-2, the demo's]
#   FINETUNE_LR  full fine-tuning learning rate                   [5e-4, the demo's]
#   MAX_VALID    in-domain validation sentences                   [200]
#   MAX_TEST     in-domain test sentences                         [500]
#   WORK_ROOT    one folder per pair under it                     [work/domain]
#   REPORT       the summary over every pair in WORK_ROOT         [reports/nmt_domain_adaptation]
#   D1_MIN_PAIRS pairs on which D1 must hold (1: a one-pair run)   [2]
#   VALID_FRACTION, TEST_FRACTION  for SRC_FILE/TGT_FILE           [0.05, 0.05]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
PAIR="${PAIR:-en-de}"
BASE_DATA="${BASE_DATA:-$ROOT/work/demo/bin}"
BASE_CKPT="${BASE_CKPT:-$ROOT/work/demo/checkpoints/base/checkpoint_last.pt}"
GENERAL_RAW="${GENERAL_RAW:-$ROOT/work/demo/raw}"
SIZES="${SIZES:-1000,4000,all}"
SEEDS="${SEEDS:-1,2,3}"
UPDATES="${UPDATES:-300}"
VALID_EVERY="${VALID_EVERY:-50}"
ADAPTER_DIM="${ADAPTER_DIM:-64}"
ADAPTER_LR="${ADAPTER_LR:-1e-2}"
FINETUNE_LR="${FINETUNE_LR:-5e-4}"
MAX_VALID="${MAX_VALID:-200}"
MAX_TEST="${MAX_TEST:-500}"
WORK_ROOT="${WORK_ROOT:-$ROOT/work/domain}"
REPORT="${REPORT:-$ROOT/reports/nmt_domain_adaptation}"
D1_MIN_PAIRS="${D1_MIN_PAIRS:-2}"
SRC=${PAIR%-*}; TGT=${PAIR#*-}
WORK="$WORK_ROOT/$PAIR"
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore}"
die() { echo "$(basename "$0"): $*" >&2; exit 2; }
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }

[ "$SRC" != "$PAIR" ] && [ -n "$SRC" ] && [ -n "$TGT" ] || die "PAIR=$PAIR: expected source-target, e.g. en-de"
[ -f "$BASE_CKPT" ] || die "base checkpoint not found: $BASE_CKPT (set BASE_CKPT; recipes/demo.sh trains one)"
for f in spm.model dict.txt langs.txt; do [ -f "$BASE_DATA/$f" ] || die "$BASE_DATA/$f not found (set BASE_DATA)"; done
[ -f "$GENERAL_RAW/test.$PAIR.$TGT" ] || die "general test set $GENERAL_RAW/test.$PAIR.$TGT not found (set GENERAL_RAW)"
[ -d "$BASE_DATA/bin" ] || die "$BASE_DATA/bin not found (set BASE_DATA)"
for n in ${SIZES//,/ }; do [[ "$n" == all || "$n" =~ ^[1-9][0-9]*$ ]] || die "SIZES=$SIZES: sizes are numbers or all"; done
for s in ${SEEDS//,/ }; do [[ "$s" =~ ^[0-9]+$ ]] || die "SEEDS=$SEEDS: seeds are numbers"; done

# ---------------------------------------------------------------- the corpus
mkdir -p "$WORK"
if [ -n "${SRC_FILE:-}" ] || [ -n "${TGT_FILE:-}" ]; then
  [ -f "${SRC_FILE:-}" ] && [ -f "${TGT_FILE:-}" ] || die "SRC_FILE and TGT_FILE must both be files"
  say "splitting $SRC_FILE / $TGT_FILE by a hash of the source"
  "$BIN/data-prep" parallel --src "$SRC_FILE" --tgt "$TGT_FILE" --src-lang "$SRC" --tgt-lang "$TGT" --overwrite \
    --valid-fraction "${VALID_FRACTION:-0.05}" --test-fraction "${TEST_FRACTION:-0.05}" \
    --output-dir "$WORK/corpus" > "$WORK/corpus.json"
  DOMAIN_DIR="$WORK/corpus"
fi
[ -n "${DOMAIN_DIR:-}" ] || die "give DOMAIN_DIR (data-prep layout) or SRC_FILE and TGT_FILE"
for split in train valid test; do
  for lang in "$SRC" "$TGT"; do
    [ -f "$DOMAIN_DIR/$split.$PAIR.$lang" ] || die "$DOMAIN_DIR/$split.$PAIR.$lang not found"
  done
done

DATA=""; CKPT="$WORK/checkpoints"; GEN="$WORK/generate"; USER_DIR="$("$BIN/nmt" user-dir)"
LANG_LIST="$(cat "$BASE_DATA/langs.txt")"
mkdir -p "$CKPT" "$GEN"
source "$ROOT/recipes/demo_lib.sh"  # SHAPE, MULTI, TRAIN, DEVICE; train(), generate()
if [ -n "${SHAPE_FLAGS:-}" ]; then read -r -a SHAPE <<< "$SHAPE_FLAGS"; fi
VALIDATED=()  # the demo's TRAIN without --disable-validation: the best checkpoint is chosen by validation loss
for flag in "${TRAIN[@]}"; do [ "$flag" = --disable-validation ] || VALIDATED+=("$flag"); done
VALIDATED+=(--validate-interval-updates "$VALID_EVERY" --save-interval-updates "$VALID_EVERY"
            --keep-interval-updates 1 --best-checkpoint-metric loss --validate-interval 1000000 --save-interval 1000000 --no-save-optimizer-state --warmup-updates 50
            --max-update "$UPDATES")

# ---------------------------------------------------------------- one binarised folder per size
prepare_size() { # size: raw-<size> (first N training lines, capped valid/test) and bin-<size>
  local size=$1 raw="$WORK/raw-$1" lines
  [ -f "$WORK/bin-$size/done" ] && return
  mkdir -p "$raw"
  for lang in "$SRC" "$TGT"; do
    if [ "$size" = all ]; then cp "$DOMAIN_DIR/train.$PAIR.$lang" "$raw/train.$PAIR.$lang"
    else head -n "$size" "$DOMAIN_DIR/train.$PAIR.$lang" > "$raw/train.$PAIR.$lang"; fi
    head -n "$MAX_VALID" "$DOMAIN_DIR/valid.$PAIR.$lang" > "$raw/valid.$PAIR.$lang"
    head -n "$MAX_TEST" "$DOMAIN_DIR/test.$PAIR.$lang" > "$raw/test.$PAIR.$lang"
  done
  lines=$(wc -l < "$raw/train.$PAIR.$SRC")
  [ "$size" = all ] || [ "$lines" -eq "$size" ] || die "size $size: $DOMAIN_DIR has only $lines training pairs"
  "$BIN/data-prep" spm-bin --raw-dir "$raw" --output-dir "$WORK/bin-$size" --spm-from "$BASE_DATA" \
    > "$WORK/bin-$size.json" 2> "$WORK/bin-$size.log" || { tail -5 "$WORK/bin-$size.log" >&2; die "spm-bin $size failed"; }
  # translation_multi_simple_epoch reads dict.<lang>.txt of every language the base knows
  for dict in "$BASE_DATA"/bin/dict.*.txt; do cp -n "$dict" "$WORK/bin-$size/bin/"; done
  touch "$WORK/bin-$size/done"
}

adapter_flags=(--task adapter_translation --enable-lang-ids --lang-pairs "$PAIR" --adapter-domain domain)
finetune_flags=(--task translation_multi_simple_epoch --lang-pairs "$PAIR")
run_system() { # system size seed: train (best checkpoint by in-domain validation loss), then both test sets
  local system=$1 size=$2 seed=$3 name="$1-$2-s$3" task lr extra=()
  if [ "$system" = domain_adapter ]; then task=("${adapter_flags[@]}"); lr=$ADAPTER_LR
    extra=(--arch adapter_transformer --adapter-dim "$ADAPTER_DIM" --adapters-by domain --adapter-domains domain)
  else task=("${finetune_flags[@]}"); lr=$FINETUNE_LR; extra=(--arch transformer); fi
  DATA="$WORK/bin-$size"
  train "$name" "${task[@]}" "${MULTI[@]}" "${extra[@]}" "${SHAPE[@]}" --finetune-from-model "$BASE_CKPT" \
    "${VALIDATED[@]}" --seed "$seed" --lr "$lr"
  [ -f "$CKPT/$name/checkpoint_best.pt" ] || die "$name: no checkpoint_best.pt (was validation run? see $CKPT/$name.log)"
  generate "$name" "$CKPT/$name/checkpoint_best.pt" "$PAIR" "$WORK/bin-$size/bin" "${task[@]}"
  generate "$name.general" "$CKPT/$name/checkpoint_best.pt" "$PAIR" "$BASE_DATA/bin" "${task[@]}"
}

say "$PAIR: in-domain sizes $SIZES, seeds $SEEDS, $UPDATES updates per run"
for size in ${SIZES//,/ }; do prepare_size "$size"; done
first=${SIZES%%,*}
# what the summary needs to score this pair (written first, so a summary of finished runs works at any time)
"$BIN/python" - "$WORK/meta.json" <<PY
import json, sys
json.dump({"pair": "$PAIR", "sizes": "$SIZES".split(","), "seeds": "$SEEDS".split(","), "updates": $UPDATES,
           "valid_every": $VALID_EVERY, "adapter_dim": $ADAPTER_DIM, "adapter_lr": "$ADAPTER_LR",
           "finetune_lr": "$FINETUNE_LR", "domain_dir": "$DOMAIN_DIR", "general_raw": "$GENERAL_RAW",
           "in_domain_raw": "$WORK/raw-$first", "base": "$BASE_CKPT"}, open(sys.argv[1], "w"), indent=2)
PY
say "the base on the in-domain and the general test sets"
generate base "$BASE_CKPT" "$PAIR" "$WORK/bin-$first/bin" "${finetune_flags[@]}"
generate base.general "$BASE_CKPT" "$PAIR" "$BASE_DATA/bin" "${finetune_flags[@]}"
for size in ${SIZES//,/ }; do
  for seed in ${SEEDS//,/ }; do
    say "$PAIR size $size seed $seed: domain adapter (d $ADAPTER_DIM), then full fine-tuning"
    run_system domain_adapter "$size" "$seed"
    run_system full_finetune "$size" "$seed"
  done
done
say "summary over every pair in $WORK_ROOT"
"$BIN/python" "$ROOT/recipes/nmt/domain_adaptation_summary.py" --work-root "$WORK_ROOT" --output-dir "$REPORT" \
  --min-pairs "$D1_MIN_PAIRS"
