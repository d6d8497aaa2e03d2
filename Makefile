# One entry point for people, hooks and CI. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5002

.DEFAULT_GOAL := help
.PHONY: help setup setup-dev run test test-fast lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/voxserve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.dev: $(BIN)/voxserve
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/voxserve  ## virtualenv with voxserve and espeak-ng
	scripts/system-deps.sh run

setup-dev: $(VENV)/.dev  ## setup, plus test tools, chromium and its driver
	scripts/system-deps.sh test

run: setup  ## start the API on http://127.0.0.1:$(PORT) with the bundled voice
	$(BIN)/voxserve serve --port $(PORT)

lint: setup-dev  ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: setup-dev  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

test: lint  ## lint, then the whole test suite on the real model
	$(BIN)/python -m pytest

test-fast: setup-dev  ## the tests without the slow speech-recognition ones
	$(BIN)/python -m pytest -m "not slow"

bench: setup-dev  ## benchmarks; results as JSON (and PNG) in benchmarks/results/
	$(BIN)/python benchmarks/bench_synthesis.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_load.py

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
