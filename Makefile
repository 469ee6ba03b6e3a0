# Two entry points (README quick start): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv and install the pinned dependencies (requirements.lock) on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): requirements.lock pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

.PHONY: setup demo test bench
setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/csbrain demo --out csbrain-demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/model_speed.py
