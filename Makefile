# Two entry points for a newcomer: `make demo` and `make test`. Both build the virtualenv first.
PYTHON ?= python3
DEMO_ARGS ?=   # e.g. make demo DEMO_ARGS="--port 8001 --size small"
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean conformance bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

test: $(STAMP) lint
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

demo: $(STAMP)
	$(BIN)/python -m chc_equity.demo $(DEMO_ARGS)

conformance: $(STAMP)
	$(BIN)/chc-equity views conformance ../shared/sql-on-fhir-v2/tests --report out/sof_test_report.json

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) out *.duckdb *.duckdb.wal
