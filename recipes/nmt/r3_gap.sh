#!/usr/bin/env bash
# R3 of the translation demo, as the base trains: does the pair adapter close the gap to full fine-tuning
# once the base has learned the pair well (Bapna & Firat 2019's regime)?
#
# For each kept checkpoint of a finished `DEMO_PROFILE=full make demo` base (by default its 2,000, 4,000,
# 6,000 and 8,000-update checkpoints), the recipe trains on one pair (en-de), from that checkpoint, with
# the same data, updates, seed and flags as the demo:
#   pair_adapter    Bapna & Firat adapters (d PAIR_DIM in every layer), base frozen
#   full_finetune   every weight of the base
#   pair_adapter_embeddings  (at EMBEDDINGS_POINTS only) the adapters plus the token embeddings and output
#                   projection (--adapter-train-embeddings): a diagnostic beyond the paper
# and translates the pair's gettext test set with both and with the checkpoint itself (beam 5).  The
# report gives BLEU / chrF++ per checkpoint beside the base's validation loss on the pair (the demo's
# base_curve.json), the gap (full fine-tuning minus pair adapter), and each run's last training loss.
# Runs already made by the demo itself (the last checkpoint, seed 1) are reused, not retrained.
#
#   bash recipes/nmt/r3_gap.sh        ->  work/r3_gap, reports/nmt_r3_gap/README.md
# Variables (defaults in brackets):
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                         # [.venv/bin]
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
DEMO_WORK="${DEMO_WORK:-$ROOT/work/demo-full}"        # [work/demo-full] a finished full-profile demo
WORK="${R3_WORK:-$ROOT/work/r3_gap}"                  # [work/r3_gap] checkpoints and hypotheses
REPORT="${R3_REPORT:-$ROOT/reports/nmt_r3_gap}"       # [reports/nmt_r3_gap]
PAIR="${PAIR:-en-de}"                                 # [en-de] R3's high-resource pair
BASE_POINTS="${BASE_POINTS:-2000 4000 6000 8000}"     # [2000 4000 6000 8000] base checkpoints (updates)
UPDATES="${UPDATES:-800}"                             # [800] updates of each run (the full profile's)
PAIR_DIM="${PAIR_DIM:-64}"                            # [64] adapter bottleneck (the demo's)
ADAPTER_LR="${ADAPTER_LR:-1e-2}"                      # [1e-2] the demo's
FINETUNE_LR="${FINETUNE_LR:-5e-4}"                    # [5e-4] the demo's
SEED="${SEED:-1}"                                     # [1]
EMBEDDINGS_POINTS="${EMBEDDINGS_POINTS:-8000}"        # [8000] checkpoints where the pair adapter is also trained with
                                                      # the embeddings and output projection (a diagnostic, not the
                                                      # paper's method: how much of the gap do they hold?)
EMBEDDINGS_LR="${EMBEDDINGS_LR:-1e-3}"                # [1e-3] its learning rate (reports/nmt_diagnostics' setting)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}" PYTHONWARNINGS=ignore

DEMO_CKPT="$DEMO_WORK/checkpoints"; DATA="$DEMO_WORK/bin"; RAW="$DEMO_WORK/raw"
[ -f "$DATA/langs.txt" ] && [ -f "$DEMO_WORK/base_curve.json" ] || {
  echo "r3_gap: no finished full-profile demo in DEMO_WORK=$DEMO_WORK (run DEMO_PROFILE=full make demo)" >&2; exit 1; }
CKPT="$WORK/checkpoints"; GEN="$WORK/generate"
USER_DIR="$("$BIN/nmt" user-dir)"
mkdir -p "$CKPT" "$GEN" "$REPORT"
LANG_LIST="$(cat "$DATA/langs.txt")"
source "$ROOT/recipes/demo_lib.sh"  # SHAPE, MULTI, TRAIN, DEVICE; train(), generate(), adapter_run() ...
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }
LAST_UPDATE="$(grep -oE 'num_updates [0-9]+' "$DEMO_CKPT/base.log" | tail -1 | awk '{print $2}')"

reuse_demo_run() { # demo-run name: the demo's own run from the base's last checkpoint, same flags and seed
  local demo_run=$1 name=$2 system=$3
  [ "$SEED" = 1 ] && [ -f "$DEMO_CKPT/$demo_run/done" ] && [ -f "$DEMO_WORK/generate/$system/generate-$PAIR.txt" ] \
    || return 1
  cp "$DEMO_CKPT/$demo_run.log" "$CKPT/$name.log"
  mkdir -p "$GEN/$name"; cp "$DEMO_WORK/generate/$system/generate-$PAIR.txt" "$GEN/$name/"
  echo "$name: the demo's own run ($demo_run), reused"
}

SYSTEMS=()
for point in $BASE_POINTS; do
  checkpoint="$(ls "$DEMO_CKPT"/base/checkpoint_*_"$point".pt 2>/dev/null | head -1)"
  [ -n "$checkpoint" ] || { echo "r3_gap: no base checkpoint at $point updates in $DEMO_CKPT/base" >&2; exit 1; }
  say "base at $point updates: pair adapter and full fine-tuning on $PAIR, $UPDATES updates each"
  if [ ! -f "$GEN/base-$point/generate-$PAIR.txt" ]; then
    generate "base-$point" "$checkpoint" "$PAIR" "$DATA/bin" --task translation_multi_simple_epoch --lang-pairs "$PAIR"
  fi
  for system in pair_adapter full_finetune; do
    name="$system-$point"
    if [ -f "$GEN/$name/generate-$PAIR.txt" ]; then echo "$name: translated already"
    elif [ "$point" = "$LAST_UPDATE" ] && reuse_demo_run "$system-$PAIR-s$SEED" "$name" "$system"; then :
    else
      if [ "$system" = pair_adapter ]; then
        adapter_run "$name" "$checkpoint" "$PAIR" pair "$PAIR_DIM" "$SEED" "$UPDATES" "$ADAPTER_LR"
        generate "$name" "$CKPT/$name/checkpoint_last.pt" "$PAIR" \
          "$DATA/bin" --task adapter_translation --enable-lang-ids --lang-pairs "$PAIR"
      else
        full_finetune_run "$name" "$checkpoint" "$PAIR" "$SEED" "$UPDATES" "$FINETUNE_LR"
        generate "$name" "$CKPT/$name/checkpoint_last.pt" "$PAIR" \
          "$DATA/bin" --task translation_multi_simple_epoch --lang-pairs "$PAIR"
      fi
      rm -f "$CKPT/$name"/checkpoint*.pt  # hypotheses and log kept; 8 MB a run otherwise
    fi
  done
  SYSTEMS+=(--system "base-$point=$GEN/base-$point" --system "pair_adapter-$point=$GEN/pair_adapter-$point"
            --system "full_finetune-$point=$GEN/full_finetune-$point")
  if [[ " $EMBEDDINGS_POINTS " == *" $point "* ]]; then
    name="pair_adapter_embeddings-$point"
    if [ ! -f "$GEN/$name/generate-$PAIR.txt" ]; then
      adapter_run "$name" "$checkpoint" "$PAIR" pair "$PAIR_DIM" "$SEED" "$UPDATES" "$EMBEDDINGS_LR" \
        --adapter-train-embeddings
      generate "$name" "$CKPT/$name/checkpoint_last.pt" "$PAIR" "$DATA/bin" --task adapter_translation \
        --enable-lang-ids --lang-pairs "$PAIR"
      rm -f "$CKPT/$name"/checkpoint*.pt
    fi
    SYSTEMS+=(--system "$name=$GEN/$name")
  fi
done

say "report"
"$BIN/nmt" report "${SYSTEMS[@]}" --raw-dir "$RAW" --supervised "$PAIR" --output-dir "$REPORT" > /dev/null
"${STUDY[@]}" studies.nmt_r3_gap_summary --report "$REPORT" --checkpoints "$CKPT" --pair "$PAIR" \
  --base-curve "$DEMO_WORK/base_curve.json" --updates "$UPDATES" --pair-dim "$PAIR_DIM" \
  --embeddings-lr "$EMBEDDINGS_LR"
echo "report: $REPORT/README.md"
