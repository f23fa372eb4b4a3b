# Everything runs from a virtualenv in .venv, created on first use from the system's python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint openapi bench migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the API on the embedded SQLite default, migrated and seeded, printing demo keys.
run: install
	$(BIN)/python -m exchange migrate
	$(BIN)/python -m exchange seed-demo
	$(BIN)/python -m exchange serve --host $(HOST) --port $(PORT)

## The whole test suite (PostgreSQL when EXCHANGE_TEST_DATABASE_URL is set, else SQLite).
test: install
	$(BIN)/python -m pytest

migrate: install
	$(BIN)/python -m exchange migrate

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations
	$(BIN)/mypy

## Regenerate openapi/openapi.json from the app (a test fails when it is stale).
openapi: install
	$(BIN)/python -m exchange openapi --output openapi/openapi.json

## Ledger benchmark on PostgreSQL (BENCH_DATABASE_URL, default the local server).
bench: install
	$(BIN)/python bench/ledger.py

## Bidding benchmark on PostgreSQL: one hot auction and 1,000 auctions through HTTP, raw baselines.
.PHONY: bench-bidding
bench-bidding: install
	$(BIN)/python bench/bidding.py

clean:
	rm -rf $(VENV) exchange.db exchange.db-shm exchange.db-wal .pytest_cache .mypy_cache
