#!/usr/bin/env bash
# The GPU benchmarks in one prepared run, for a machine with a CUDA torch but no registry access:
#
#   bench/gpu_run.sh OUT_DIR [PART [WHEELS_DIR]]
#
# PART: xling (CUDA equivalence tests, P7, P6, P5, profile of P6), nmt (P1/P4, P3, profile of P3) or all
# (default): a GPU lease is short, so the two halves can run as two calls.
# WHEELS_DIR (default .whl) holds wheels for the Python the GPU machine runs (fetched beforehand with
# `pip download --no-deps --only-binary=:all: --python-version 3.12 ...`; never committed):
#   ours/  fairseq-fixed and what it imports that such an image lacks (hydra-core, omegaconf, antlr4, bitarray, dill)
#   ah/    AdapterHub adapters 1.3.0 with transformers 4.57.6, tokenizers 0.22, huggingface_hub 0.36 (its own path)
# Each step runs under its own time limit (LIMIT_* variables, seconds), so one failure leaves the others' figures:
# P7, P6, P5 are xling at the realistic shapes with AdapterHub in the same run; P1/P4 and P3 fairseq at the
# M2M-100 418M shape.  OUT_DIR gets results.json (RESULTS_IN, default bench/results.json, with the `cuda` part
# rewritten), a log per step and the profiles.
set -uo pipefail
OUT_DIR="${1:?usage: bench/gpu_run.sh OUT_DIR [PART [WHEELS_DIR]]}"
PART="${2:-all}"
WHEELS="${3:-.whl}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python3}"
step() { # seconds name command...: run with a limit, keep going on failure
  local limit=$1 name=$2; shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$OUT_DIR/$name.log" 2>&1
  echo "== $name: exit $? after $((SECONDS - started)) s"; tail -n 12 "$OUT_DIR/$name.log"
}
if [ -d "$WHEELS/ours" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/bench-site "$WHEELS"/ours/*.whl
  export PYTHONPATH="/tmp/bench-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d "$WHEELS/ah" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/bench-ah "$WHEELS"/ah/*.whl
  export AH_PYTHONPATH=/tmp/bench-ah
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT_DIR/gpu.txt" 2>&1
cp "${RESULTS_IN:-bench/results.json}" "$OUT_DIR/results.json"
RESULTS="$OUT_DIR/results.json"
if [ "$PART" != nmt ]; then
  [ -n "${SKIP_TESTS:-}" ] || step "${LIMIT_TESTS:-90}" cuda_tests "$PY" -m pytest -q -p no:cacheprovider tests/adapter_core/test_cuda_equivalence.py
  step "${LIMIT_P7:-100}" bench_P7 "$PY" -m bench --device cuda --rounds "${ROUNDS:-2}" --output "$RESULTS" --only P7
  step "${LIMIT_P6:-240}" bench_P6 "$PY" -m bench --device cuda --rounds "${ROUNDS:-2}" --output "$RESULTS" --only P6
  step "${LIMIT_P5:-120}" bench_P5 "$PY" -m bench --device cuda --rounds "${ROUNDS:-2}" --output "$RESULTS" --only P5
  [ -n "${SKIP_PROFILE:-}" ] || step "${LIMIT_PROFILE:-60}" profile_p6 "$PY" -m bench.time_profile --device cuda --which p6 --json "$OUT_DIR/profile_p6.json"
fi
if [ "$PART" != xling ]; then
  export ROUNDS=3
  step "${LIMIT_P1:-150}" bench_P1_P4 "$PY" -m bench --device cuda --rounds "${ROUNDS:-2}" --output "$RESULTS" --only P1,P4
  step "${LIMIT_P3:-120}" bench_P3 "$PY" -m bench --device cuda --rounds "${ROUNDS:-2}" --output "$RESULTS" --only P3
  step "${LIMIT_PROFILE:-60}" profile_p3 "$PY" -m bench.time_profile --device cuda --which p3 --json "$OUT_DIR/profile_p3.json"
fi
