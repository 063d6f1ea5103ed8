# qdtrack-pl: the two README commands are `make train` and `make test`; each one sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# the sweeper and launcher extras too, so their tests run instead of skipping
EXTRAS ?= dev,optuna,slurm

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast test-notebooks bench ablation ablation-smoke lint format clean

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)  ## Create .venv and install the package with the dev, optuna and slurm extras (re-runs only when pyproject.toml changes)

train: $(STAMP)  ## The main job: generate data=synth, train the CPU default, track + evaluate val (ARGS="key=value ..." to override)
	$(BIN)/qdtrack-train experiment=synth $(ARGS)

test: $(STAMP)  ## Static checks (make lint, under a minute), then the whole test suite, notebooks included
	@$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q $(ARGS)
	@$(MAKE) --no-print-directory test-notebooks

test-notebooks: $(STAMP)  ## Execute every notebook in notebooks/ top to bottom (nbmake, the tiny smoke model)
	QDTRACK_NOTEBOOK_SMOKE=1 $(BIN)/python -m pytest -q --nbmake --nbmake-timeout=600 notebooks

test-fast: $(STAMP)  ## Tests without the slow end-to-end runs
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

ablation: $(STAMP)  ## The paper's ablations on the embedded benchmark (71 min measured on 2 cores, resumable): ablation/results.md
	$(BIN)/qdtrack-ablation $(ARGS)

ablation-smoke: $(STAMP)  ## The same ablation at synth_tiny size (minutes): ablation-smoke/results.md
	$(BIN)/qdtrack-ablation --config-name ablation_smoke $(ARGS)

bench: $(STAMP)  ## Benchmarks: writes bench/results.json and prints a table
	$(BIN)/python -m benchmarks.run $(ARGS)

lint: $(STAMP)  ## Static checks: ruff, and mypy (--strict for ops/, tracking/, eval/; pyproject [tool.mypy])
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)  ## Format the code
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:  ## Remove caches and run folders (keeps .venv and data/)
	rm -rf .pytest_cache .ruff_cache logs outputs multirun
	find src tests benchmarks -name __pycache__ -prune -exec rm -rf {} +  # also numba's compiled loops
