# Shared part of the MAD-X recipes (sourced by madx_ner.sh, madx_qa.sh, madx_xcopa.sh).
# Pfeiffer et al. (2020): language adapters (+ NICE invertible adapters) by MLM on monolingual text,
# a task adapter trained on the source language with its language adapter stacked below and frozen,
# zero-shot evaluation with the target language's adapter swapped in.  Steps already done are skipped.
#
# Variables (defaults in brackets):
#   BIN        folder of the console scripts                                  [<repo>/.venv/bin]
#   MODEL      XLM-R (or mBERT) model directory: config.json, weights, tokenizer [models/xlm-roberta-base]
#   MONO       monolingual text, one file per language: $MONO/<lang>.txt       [data/mono]
#              (`data-prep mono --kind wiki ...` makes them from WikiExtractor output)
#   SRC_LANG   the language the task adapter is trained on                    [en]
#   TGT_LANGS  space-separated target languages                               [recipe-specific]
#   SEEDS      space-separated seeds of the task adapter                      [1 2 3]
#   LANG_STEPS MLM steps per language adapter (MAD-X: 250k)                   [20000]
#   TASK_EPOCHS task adapter epochs                                           [recipe-specific]
#   WORK       adapters and results                                           [work/xling]
#   REPORTS    reports                                                        [reports/xling]
#   EXTRA      extra flags for every xling training command (e.g. --cpu)      []
# A published AdapterHub language adapter can replace training: put it at $WORK/lang-<lang>/adapter.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${BIN:-$ROOT/.venv/bin}"
MODEL="${MODEL:-$ROOT/models/xlm-roberta-base}"
MONO="${MONO:-$ROOT/data/mono}"
SRC_LANG="${SRC_LANG:-en}"
SEEDS="${SEEDS:-1 2 3}"
LANG_STEPS="${LANG_STEPS:-20000}"
WORK="${WORK:-$ROOT/work/xling}"
REPORTS="${REPORTS:-$ROOT/reports/xling}"
EXTRA="${EXTRA:-}"

[ -f "$MODEL/config.json" ] || { echo "MODEL=$MODEL has no config.json: download XLM-R (or mBERT) there first" >&2; exit 1; }

language_adapter() { # lang: train it by MLM unless it exists
  local lang=$1 out="$WORK/lang-$1"
  [ -f "$out/adapter/adapter_config.json" ] && return
  [ -f "$MONO/$lang.txt" ] || { echo "no monolingual text $MONO/$lang.txt for the $lang language adapter" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$BIN/xling" train-lang --model "$MODEL" --lang "$lang" --text "$MONO/$lang.txt" --output-dir "$out" \
    --max-steps "$LANG_STEPS" --learning-rate 1e-4 $EXTRA
}

task_adapter() { # task seed train-file [extra flags]: train the task adapter on SRC_LANG unless it exists
  local task=$1 seed=$2 train=$3; shift 3
  local out="$WORK/$task-seed$seed"
  [ -f "$out/adapter/adapter_config.json" ] && return
  # shellcheck disable=SC2086
  "$BIN/xling" train-task --task "$task" --model "$MODEL" --lang-adapter "$WORK/lang-$SRC_LANG/adapter" \
    --train "$train" --output-dir "$out" --seed "$seed" --learning-rate 1e-4 "$@" $EXTRA
}

evaluate() { # task seed lang data [extra flags]: zero-shot evaluation with lang's adapter swapped in
  local task=$1 seed=$2 lang=$3 data=$4; shift 4
  local out="$WORK/results/$task-$lang-seed$seed.json"
  [ -f "$out" ] && return
  "$BIN/xling" eval --model "$MODEL" --task-adapter "$WORK/$task-seed$seed/adapter" \
    --lang-adapter "$WORK/lang-$lang/adapter" --lang "$lang" --data "$data" --output "$out" "$@"
}

report() { # task
  "$BIN/xling" report "$WORK"/results/"$1"-*.json --output-dir "$REPORTS/$1" --source-language "$SRC_LANG"
  echo "report: $REPORTS/$1/report.md"
}
