# The two commands of the README:  `make run`  (set up, then chat on the embedded defaults)
#                                  `make test` (set up, then lint, type-check, check the layers
#                                               and run the suite)
PYTHON ?= python3
# The CPU build of torch; an unpinned torch would pull the CUDA build (several GB).
TORCH  ?= torch==2.13.0
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck imports pytest bench bench-telegram bench-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cxbot chat

test: $(STAMP) lint typecheck imports pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The layer rules (which package may import which): contracts in pyproject.toml.
imports: $(STAMP)
	$(BIN)/lint-imports

# Two workers (pytest-xdist): every test has its own database, folder and ports, and the suite
# takes about 10 minutes on 2 cores instead of 15.
pytest: $(STAMP)
	$(BIN)/pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/engine.py

bench-telegram: $(STAMP)
	$(BIN)/python bench/telegram.py

bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
