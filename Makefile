# The two quick-start commands: `make up` (the local stack) and `make test` (everything CI runs).
# Both build .venv from the committed lock file first; only Python 3.11+ is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-from-lock

.PHONY: up test lint openapi lock bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "finsync needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

up: $(STAMP)
	$(BIN)/finsync up

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/finsync openapi --check
	$(BIN)/pytest

openapi: $(STAMP)
	$(BIN)/finsync openapi

# Re-lock after changing dependencies in pyproject.toml (needs network; uv is fetched into the venv).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra local --extra test --generate-hashes \
		--python-version 3.11 -o requirements.lock

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks.bench_kernel

clean:
	rm -rf $(VENV) .finsync .mypy_cache .ruff_cache
