#!/usr/bin/env bash
# The shared base of the e5 recipes without an MLM head or language adapters: the registry data, the fixed test
# subsets, the language adapter texts, and multilingual-e5-small imported and trimmed to those texts (BASE/e5-trim).
# recipes/xling/e5_madx_plateau.sh then trains its head and adapters on it; e5_pos.sh etc. run on BASE/HEAD_DIR.
# With BIGBENCH=0 (a machine where the registry no longer serves bigbench==1.0.0): POS only, en and tr.
# Variables: recipes/xling/e5_common.sh (BASE, BIN, BIGBENCH, MONO_LINES, POS_TEST, TRIM_EXTRA).
set -euo pipefail
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
log "base $BASE: data (bigbench: $BIGBENCH)"
prepare_data
mono_text
log "base: import and trim multilingual-e5-small"
trim_encoder
log "base ready: $BASE/e5-trim"
