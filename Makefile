# The two promises of the README: `make run` and `make test`, each from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CORPUS ?= corpus
INDEX ?= index
# Extra pip arguments for torch alone; the Dockerfile points them at the CPU wheel index.
TORCH_PIP_ARGS ?=
export HF_HUB_OFFLINE := 1

.PHONY: install install-dev index run test lint typecheck eval screenshot clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

index: install
	$(BIN)/citeqa ingest --corpus $(CORPUS) --index $(INDEX) --if-stale

run: index
	$(BIN)/citeqa serve --index $(INDEX) --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

typecheck: install-dev
	$(BIN)/mypy ingest service eval tests

test: lint typecheck
	$(BIN)/pytest

eval: install-dev index
	$(BIN)/citeqa eval --index $(INDEX) --corpus $(CORPUS) --out docs/eval --tune --variants

screenshot: install-dev
	CITEQA_SCREENSHOT_DIR=docs $(BIN)/pytest -q tests/service/test_browser.py -k highlight

clean:
	rm -rf $(VENV) $(INDEX) $(INDEX).cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
