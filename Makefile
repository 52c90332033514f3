PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint broker couch clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A RabbitMQ broker answering at SVC_AMQP_URL (started or installed when local).
broker:
	bash scripts/ensure-broker.sh

# The CouchDB-API server the tests start on loopback (pouchdb-server, pinned in couch/),
# installed into couch/node_modules with npm ci when missing or when the lock changed.
couch:
	bash scripts/ensure-couch.sh

# The service, with the embedded SQLite store (SVC_* settings: docs/operations.md).
run: $(STAMP) broker
	$(BIN)/svc serve

# The whole suite; benchmarks run at smoke size (SVC_BENCH_SCALE=smoke).
test: $(STAMP) broker couch
	$(BIN)/ruff check svc tests
	SVC_BENCH_SCALE=smoke $(BIN)/pytest -q

# Benchmarks at full size, figures printed to the terminal.
bench: $(STAMP) broker couch
	SVC_BENCH_SCALE=full $(BIN)/pytest -q -s tests/bench

lint: $(STAMP)
	$(BIN)/ruff check svc tests
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
