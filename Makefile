# Every target bootstraps .venv when it is missing: a fresh machine needs only
# Python 3.11 and make (plus PostgreSQL/Redis for the tests that use them).
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up demo test test-unit test-integration lint bench clean venv

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[sandbox,dev]'
	@touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/interchange up

demo: $(STAMP)
	$(BIN)/interchange up --demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf .interchange .pytest_cache .ruff_cache
