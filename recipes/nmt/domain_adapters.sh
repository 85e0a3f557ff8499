#!/usr/bin/env bash
# Bapna & Firat (2019) domain adapters: one adapter per domain for one language pair, on a frozen base.
# Each domain trains in its own run on its own data (--adapters-by domain --adapter-domain NAME), each run
# continuing from the previous one's checkpoint, so the final checkpoint holds every domain's adapter.
#
#   recipes/nmt/domain_adapters.sh                  (PAIR and DOMAINS from the variables below)
#
# Input: DOMAIN_ROOT/<domain>/ holds that domain's text in data_prep layout (train/valid/test.<src>-<tgt>.<lang>;
# e.g. `data-prep parallel --src ... --tgt ... --src-lang en --tgt-lang de --output-dir DOMAIN_ROOT/med
# --valid-fraction 0.01 --test-fraction 0.01`).
# Steps (each skipped when done; an interrupted fairseq-train resumes):
#   1. binarise every domain with the base's SentencePiece model and dictionary;
#   2. train one adapter per domain, in turn;
#   3. translate each domain's test set with the base and with its domain adapter;
#   4. nmt report, one system per domain -> $REPORTS/domain-PAIR/nmt.md.
# Variables: see common.sh, plus
#   PAIR         the language pair                                  [en-de]
#   DOMAINS      comma-separated domain names                       [news,med]
#   DOMAIN_ROOT  folder with one raw-text folder per domain         [data/nmt/domains]
#   ADAPTER_DIM  bottleneck width                                   [256]
#   UPDATES      updates per domain                                 [5000]
set -euo pipefail
source "$(dirname "$0")/common.sh"
PAIR="${PAIR:-en-de}"
DOMAINS="${DOMAINS:-news,med}"
DOMAIN_ROOT="${DOMAIN_ROOT:-$ROOT/data/nmt/domains}"
ADAPTER_DIM="${ADAPTER_DIM:-256}"
UPDATES="${UPDATES:-5000}"
RAW="$DOMAIN_ROOT"  # check_inputs: the domain folders are under it
check_inputs
SRC=${PAIR%-*}; TGT=${PAIR#*-}
NAME="domain-$PAIR"

previous="$BASE_CKPT"
step=0
for domain in ${DOMAINS//,/ }; do
  step=$((step + 1))
  [ -f "$DOMAIN_ROOT/$domain/train.$PAIR.$SRC" ] || die "no $DOMAIN_ROOT/$domain/train.$PAIR.$SRC"
  say "domain $step: $domain"
  binarise "$DOMAIN_ROOT/$domain" "$WORK/data-$NAME/$domain" "$PAIR"
  data="$WORK/data-$NAME/$domain/bin"
  # BASE_CKPT is only the first run's start; later runs continue from the previous domain's checkpoint.
  BASE_CKPT="$previous" train "$NAME/$domain" "$data" --lang-pairs "$PAIR" --adapters-by domain \
    --adapter-domains "$DOMAINS" --adapter-domain "$domain" --adapter-dim "$ADAPTER_DIM" --max-update "$UPDATES"
  previous="$WORK/checkpoints/$NAME/$domain/checkpoint_last.pt"
done

say "translate each domain's test set"
systems=()
for domain in ${DOMAINS//,/ }; do
  data="$WORK/data-$NAME/$domain/bin"
  [ -f "$data/test.$PAIR.$SRC.bin" ] || { echo "$domain: no test set, not scored"; continue; }
  generate "$NAME-$domain-base" "$data" "$BASE_CKPT" "$PAIR" --task translation_multi_simple_epoch --lang-pairs "$PAIR"
  generate "$NAME-$domain-adapter" "$data" "$previous" "$PAIR" --task adapter_translation --lang-pairs "$PAIR" \
    --adapter-domain "$domain"
  systems+=(--system "$domain-base=$WORK/generate/$NAME-$domain-base" --system "$domain-adapter=$WORK/generate/$NAME-$domain-adapter")
done
[ ${#systems[@]} -gt 0 ] || die "no domain has a test set: nothing to report"

say "report"
# Each domain's test set has its own references: score each domain against its own raw folder.
for domain in ${DOMAINS//,/ }; do
  [ -d "$WORK/generate/$NAME-$domain-adapter" ] || continue
  "$BIN/nmt" report --system "base=$WORK/generate/$NAME-$domain-base" \
    --system "adapter=$WORK/generate/$NAME-$domain-adapter" --raw-dir "$DOMAIN_ROOT/$domain" --supervised "$PAIR" \
    --output-dir "$REPORTS/$NAME/$domain"
  echo "report ($domain): $REPORTS/$NAME/$domain/nmt.md"
done
