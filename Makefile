# The two commands of the README. Both create .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck unit docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so a second `make` does not reinstall; they depend on pyproject.toml.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# The demo imports the sample files shipped in the package into the command
# line's default store, identity-graph.db (ignored by git), so the commands it
# prints next work as they are; run it twice and the second import changes
# nothing.  It runs on the base install: no extra is needed.
demo: $(VENV)/.installed
	$(BIN)/identity-graph demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks examples docs/tools
	$(BIN)/ruff format --check src tests benchmarks examples docs/tools

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck unit

docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict

bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/resolution.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/kpis.py
	$(BIN)/python benchmarks/import.py
	$(BIN)/python benchmarks/stores.py --calls 2000 --events 200000 --links 1000000

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
