# The README's two commands: `make demo` (the main job) and `make test` (set-up + whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -c constraints.txt
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: install test demo bench clean

install: $(STAMP)

# Order matters: torch first (a CPU wheel on these machines), so nothing later
# can drag in a CUDA build; fairseq last, without build isolation (its build
# requires torch) and without its dependencies (they pull a CUDA torchaudio).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) setuptools wheel cython numpy
	$(PIP) --use-pep517 -e '.[dev]'
	$(PIP) --no-deps --no-build-isolation fairseq-fixed==0.12.3.1
	$(BIN)/python -c "import torch, fairseq, transformers, adapter_core; print('torch', torch.__version__, 'fairseq', fairseq.__version__, 'transformers', transformers.__version__)"
	touch $@

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: install
	bash recipes/demo.sh

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
