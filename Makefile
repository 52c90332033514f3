PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole suite; benchmarks run at smoke size (SVC_BENCH_SCALE=smoke).
test: $(STAMP)
	$(BIN)/ruff check svc tests
	SVC_BENCH_SCALE=smoke $(BIN)/pytest -q

# Benchmarks at full size, figures printed to the terminal.
bench: $(STAMP)
	SVC_BENCH_SCALE=full $(BIN)/pytest -q -s tests/bench

lint: $(STAMP)
	$(BIN)/ruff check svc tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
