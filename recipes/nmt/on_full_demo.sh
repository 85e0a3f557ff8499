# Sourced by the recipes that build on a finished full-profile demo (lang_adapter_budget.sh, lang_pair_stack.sh).
# Needs ROOT, BIN, DEMO_WORK, WORK, REPORT and RECIPE (the recipe's name, for the error); sets DEMO_CKPT, DATA, RAW,
# BASE (the demo's), CKPT, GEN (the recipe's), USER_DIR and LANG_LIST, sources demo_lib.sh and defines say().
# shellcheck shell=bash
DEMO_CKPT="$DEMO_WORK/checkpoints"; DATA="$DEMO_WORK/bin"; RAW="$DEMO_WORK/raw"; BASE="$DEMO_CKPT/base/checkpoint_last.pt"
[ -f "$DATA/langs.txt" ] && [ -f "$BASE" ] && [ -d "$DEMO_WORK/generate/base" ] || {
  echo "$RECIPE: no finished full-profile demo in DEMO_WORK=$DEMO_WORK" >&2; exit 1; }
CKPT="$WORK/checkpoints"; GEN="$WORK/generate"
USER_DIR="$("$BIN/nmt" user-dir)"
mkdir -p "$CKPT" "$GEN" "$REPORT"
LANG_LIST="$(cat "$DATA/langs.txt")"
source "$ROOT/recipes/demo_lib.sh"  # SHAPE, MULTI, TRAIN, DEVICE; train(), generate(), adapter_run()
say() { printf '\n== %s  [%s]\n' "$*" "$(date +%H:%M:%S)"; }
