#!/usr/bin/env bash
# make demo: the whole story on real parallel text found on this machine.
#
#   1. gettext catalogs (/usr/share/locale) -> en<->xx parallel text, SentencePiece, fairseq binaries
#   2. a small multilingual base (fairseq transformer, translation_multi_simple_epoch) on en<->xx
#   3. Bapna & Firat (2019) pair adapters for one pair, against the base and full fine-tuning
#   4. Philip et al. (2020) monolingual adapters, evaluated on zero-shot xx->yy directions
#   5. MAD-X (Pfeiffer et al., 2020) smoke run on a tiny XLM-R-shaped model pretrained here
#   6. reports/demo/: nmt.json, xling.json, README.md (both tables), Markdown and PNGs
#
# Every step skips work already done, so a re-run after an interruption picks up
# where it stopped.  Training steps run for a fixed wall-clock budget (minutes,
# below), so the demo takes about the same time on any machine; the scores are
# what that budget buys on it.  Variables (defaults in brackets):
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"                          # [.venv/bin] where the console scripts are
WORK="${DEMO_WORK:-$ROOT/work/demo}"                     # [work/demo] data and checkpoints
REPORT="${DEMO_REPORT:-$ROOT/reports/demo}"              # [reports/demo] what a person reads
LANGS="${DEMO_LANGS:-de,fr,es,sv,uk,ar}"                 # [de,fr,es,sv,uk,ar] ar has far fewer strings
PAIR="${DEMO_PAIR:-en-ar}"                               # [en-ar] the pair for pair adapters vs full fine-tuning
ZERO_SHOT="${DEMO_ZERO_SHOT:-de-fr,fr-de,uk-es}"         # [de-fr,fr-de,uk-es] never-trained directions
BASE_MINUTES="${DEMO_BASE_MINUTES:-4.5}"                 # [4.5] base training budget
ADAPTER_UPDATES="${DEMO_ADAPTER_UPDATES:-100}"           # [100] updates of each adapter / fine-tuning run
XLING_MINUTES="${DEMO_XLING_MINUTES:-1.5}"               # [1.5] tiny XLM-R pretraining
XLING_LANG_STEPS="${DEMO_XLING_LANG_STEPS:-80}"          # [80] MLM steps of each language adapter
XLING_TASK_STEPS="${DEMO_XLING_TASK_STEPS:-150}"         # [150] steps of the task adapter
MAX_TRAIN="${DEMO_MAX_TRAIN:-20000}"                     # [20000] training pairs per direction
TEST_SIZE="${DEMO_TEST_SIZE:-200}"                       # [200] test sentences per direction
# The NMT part and the MAD-X part run at the same time, one thread each by
# default: on 2 cores that beats running them one after the other with 2 threads.
THREADS="${DEMO_THREADS:-1}"                             # [1] threads of the NMT part
XLING_THREADS="${DEMO_XLING_THREADS:-1}"                 # [1] threads of the MAD-X part
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONWARNINGS="ignore"

RAW="$WORK/raw"; DATA="$WORK/bin"; CKPT="$WORK/checkpoints"; GEN="$WORK/generate"
USER_DIR="$("$BIN/nmt-user-dir")"
mkdir -p "$WORK" "$REPORT" "$CKPT" "$GEN"
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }
hours() { python3 -c "print($1 / 60)"; }

# ---------------------------------------------------------------- 1. data
say "1/5 gettext catalogs -> parallel text ($LANGS)"
"$BIN/data-prep" gettext --out "$RAW" --langs "$LANGS" --selected-only --max-train "$MAX_TRAIN" \
  --max-valid 200 --max-test "$TEST_SIZE" > "$WORK/gettext.json"
cp "$RAW/gettext_counts.md" "$REPORT/gettext_counts.md"
say "SentencePiece + fairseq binarisation"
"$BIN/data-prep" spm-bin --raw-dir "$RAW" --out "$DATA" --vocab-size 4000 --max-lines-per-lang 8000 \
  --workers "$(nproc)" > "$WORK/spm.json" 2> "$WORK/spm.log" || { tail -20 "$WORK/spm.log" >&2; exit 1; }
LANG_LIST="$(cat "$DATA/langs.txt")"
EN_XX="$(cat "$DATA/lang_pairs.txt")"
XX_EN="$(echo "$EN_XX" | tr ',' '\n' | awk -F- '{print $2"-"$1}' | paste -sd, -)"
SUPERVISED="$EN_XX,$XX_EN"

SHAPE=(--encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 128 --decoder-embed-dim 128
       --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512 --encoder-attention-heads 4
       --decoder-attention-heads 4 --share-all-embeddings)
MULTI=(--langs "$LANG_LIST" --encoder-langtok tgt --sampling-method temperature --sampling-temperature 1.5)
TRAIN=(--optimizer adam --adam-betas '(0.9,0.98)' --lr-scheduler inverse_sqrt --criterion label_smoothed_cross_entropy
       --label-smoothing 0.1 --dropout 0.1 --max-tokens 2048 --no-epoch-checkpoints
       --log-format simple --log-interval 25 --num-workers 0 --seed 1 --disable-validation
       --save-interval-updates 200 --keep-interval-updates 1)
DEVICE=()
"$BIN/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || DEVICE=(--cpu)
TRAIN+=("${DEVICE[@]}")

# fairseq checkpoints hold argparse.Namespace objects: torch >= 2.6 loads them only with the
# plugin's safe-globals list, so every fairseq command below loads the plugin (--user-dir).
train() { # name args...: fairseq-train unless that run finished already (an interrupted one resumes)
  local name=$1; shift
  if [ -f "$CKPT/$name/checkpoint_last.pt" ] && [ -f "$CKPT/$name/done" ]; then echo "$name: done already"; return; fi
  "$BIN/fairseq-train" "$DATA/bin" --user-dir "$USER_DIR" --save-dir "$CKPT/$name" "$@" \
    2>&1 | tee "$CKPT/$name.log" | grep -E "train_inner|num. shared|trainable parameters|done training" || true
  [ -f "$CKPT/$name/checkpoint_last.pt" ] || { echo "training $name failed: see $CKPT/$name.log" >&2; exit 1; }
  touch "$CKPT/$name/done"
}

# ---------------------------------------------------------------- MAD-X smoke run (runs beside the NMT part)
madx_smoke_run() {
  local X="$WORK/xling"; mkdir -p "$X"
  "$BIN/data-prep" mono-gettext --gettext-dir "$RAW" --langs en,de,ar --out "$X/mono" > /dev/null
  "$BIN/data-prep" tagging --gettext-dir "$RAW" --langs de,ar --out "$X/tagging" > /dev/null
  "$BIN/python" -m xling.tiny_model --text "$X/mono/train.en" "$X/mono/train.de" "$X/mono/train.ar" \
    --out "$X/tiny-xlmr" --max-minutes "$XLING_MINUTES" --max-lines-per-file 10000 --vocab-size 3000
  for lang in en de ar; do
    [ -f "$X/lang-$lang/adapter/adapter_config.json" ] || \
      "$BIN/xling" train-lang --model "$X/tiny-xlmr" --lang "$lang" --text "$X/mono/train.$lang" \
        --output "$X/lang-$lang" --max-steps "$XLING_LANG_STEPS" --batch-size 32 --learning-rate 1e-3 --max-length 64
  done
  [ -f "$X/task-tagging/adapter/adapter_config.json" ] || \
    "$BIN/xling" train-task --task ner --model "$X/tiny-xlmr" --lang-adapter "$X/lang-en/adapter" \
      --train "$X/tagging/train.en.panx" --output "$X/task-tagging" --max-steps "$XLING_TASK_STEPS" \
      --batch-size 32 --learning-rate 1e-3 --max-length 64
  for lang in en de ar; do  # zero-shot: the task adapter stays, the language adapter is swapped
    "$BIN/xling" eval --model "$X/tiny-xlmr" --task-adapter "$X/task-tagging/adapter" \
      --lang-adapter "$X/lang-$lang/adapter" --lang "$lang" --data "$X/tagging/test.$lang.panx" \
      --output "$X/results/tagging-$lang.json"
  done
  "$BIN/xling" report "$X"/results/*.json --output-dir "$REPORT/xling" --source-language en
  cp "$REPORT/xling/report.json" "$REPORT/xling.json"
}

say "MAD-X smoke run started beside the NMT part (log: $WORK/xling.log)"
( OMP_NUM_THREADS=$XLING_THREADS MKL_NUM_THREADS=$XLING_THREADS madx_smoke_run ) > "$WORK/xling.log" 2>&1 &
XLING_PID=$!

generate() { # system checkpoint direction task-args...: fairseq-generate unless its output exists
  local system=$1 checkpoint=$2 direction=$3; shift 3
  local out="$GEN/$system/generate-$direction.txt"
  [ -s "$out" ] && return
  mkdir -p "$GEN/$system"
  "$BIN/fairseq-generate" "$DATA/bin" --user-dir "$USER_DIR" --path "$checkpoint" --gen-subset test \
    -s "${direction%-*}" -t "${direction#*-}" --beam 5 --max-len-a 1.5 --max-len-b 10 --max-tokens 4000 \
    --remove-bpe sentencepiece --num-workers 0 "${DEVICE[@]}" "$@" > "$out.tmp" 2> "$out.log"
  mv "$out.tmp" "$out"
}
ALL_EVAL="$EN_XX,$ZERO_SHOT"
generate_all() { # system checkpoint task-args...: every supervised en->xx and zero-shot direction
  local system=$1 checkpoint=$2; shift 2
  for direction in ${ALL_EVAL//,/ }; do
    generate "$system" "$checkpoint" "$direction" --lang-pairs "$ALL_EVAL" "${MULTI[@]}" "$@"
  done
}

# ---------------------------------------------------------------- 2. base
say "2/5 multilingual base on $SUPERVISED (${BASE_MINUTES} min)"
train base --stop-time-hours "$(hours "$BASE_MINUTES")" --task translation_multi_simple_epoch --lang-pairs "$SUPERVISED" "${MULTI[@]}" \
  --arch transformer "${SHAPE[@]}" "${TRAIN[@]}" --lr 2e-3 --warmup-updates 300
# The base's translations (beam 5) run on the second core while the adapters train.
say "generation with the base (beam 5) started in the background: $ALL_EVAL"
generate_all base "$CKPT/base/checkpoint_last.pt" --task translation_multi_simple_epoch > "$WORK/generate-base.log" 2>&1 &
BASE_GEN_PID=$!

# ---------------------------------------------------------------- 3. pair adapters vs full fine-tuning
# Fine-tuning runs stop after a number of updates, not a time budget: fairseq's
# --stop-time-hours would count the base's training time too (--finetune-from-model keeps it).
say "3/5 Bapna & Firat pair adapter for $PAIR, and full fine-tuning of the same base ($ADAPTER_UPDATES updates each)"
ADAPTER_COMMON=(--task adapter_translation --enable-lang-ids "${MULTI[@]}"
                --arch adapter_transformer "${SHAPE[@]}" --finetune-from-model "$CKPT/base/checkpoint_last.pt")
train pair_adapter --max-update "$ADAPTER_UPDATES" "${ADAPTER_COMMON[@]}" --lang-pairs "$PAIR" --adapters-by pair \
  --adapter-dim 64 "${TRAIN[@]}" --lr 1e-3 --warmup-updates 50
train full_finetune --max-update "$ADAPTER_UPDATES" --task translation_multi_simple_epoch --lang-pairs "$PAIR" "${MULTI[@]}" \
  --arch transformer "${SHAPE[@]}" --finetune-from-model "$CKPT/base/checkpoint_last.pt" \
  "${TRAIN[@]}" --lr 5e-4 --warmup-updates 50

# ---------------------------------------------------------------- 4. monolingual adapters, zero-shot
say "4/5 Philip et al. monolingual adapters on $SUPERVISED ($((3 * ADAPTER_UPDATES / 2)) updates)"
train lang_adapters --max-update "$((3 * ADAPTER_UPDATES / 2))" "${ADAPTER_COMMON[@]}" --lang-pairs "$SUPERVISED" --adapters-by lang \
  --adapter-dim 64 "${TRAIN[@]}" --lr 1e-3 --warmup-updates 50

say "generation (beam 5): lang_adapters on $ALL_EVAL; pair_adapter and full_finetune on $PAIR"
generate_all lang_adapters "$CKPT/lang_adapters/checkpoint_last.pt" --task adapter_translation --enable-lang-ids
generate pair_adapter "$CKPT/pair_adapter/checkpoint_last.pt" "$PAIR" --task adapter_translation --enable-lang-ids \
  --lang-pairs "$PAIR" "${MULTI[@]}"
generate full_finetune "$CKPT/full_finetune/checkpoint_last.pt" "$PAIR" --task translation_multi_simple_epoch \
  --lang-pairs "$PAIR" "${MULTI[@]}"
wait "$BASE_GEN_PID" || { tail -20 "$WORK/generate-base.log" >&2; echo "generation with the base failed" >&2; exit 1; }

say "BLEU report"
"$BIN/python" -m nmt.report_spec --checkpoints "$CKPT" --generate "$GEN" --out "$WORK/nmt_spec.json"
"$BIN/nmt-report" --spec "$WORK/nmt_spec.json" --raw-dir "$RAW" --supervised "$SUPERVISED" --out "$REPORT"


say "waiting for the MAD-X smoke run"
wait "$XLING_PID" || { tail -30 "$WORK/xling.log" >&2; echo "MAD-X smoke run failed: see $WORK/xling.log" >&2; exit 1; }
"$BIN/python" "$ROOT/recipes/demo_summary.py" --report "$REPORT" --work "$WORK" --elapsed "$SECONDS"
say "done in $((SECONDS / 60)) min $((SECONDS % 60)) s: $REPORT/README.md"
