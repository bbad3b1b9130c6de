# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
LAKE   ?= ./lakehouse
DATA   ?= ./data/raw
PYTEST_ARGS ?=

.PHONY: demo test venv java lint bench cluster-test dist clean

$(BIN)/replenish: setup.py
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

venv: $(BIN)/replenish

java:
	@$(BIN)/python -c "from replenish.session import check_java; check_java()" || exit 1

demo: venv java
	$(BIN)/replenish run-all --lake $(LAKE) --set generate.out=$(DATA)

test: venv java
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check lib jobs tests benchmarks
	$(BIN)/ruff format --check lib jobs tests benchmarks

bench: venv java
	$(BIN)/python -m benchmarks.run_all

dist: venv
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(LAKE) $(DATA) spark-warehouse metastore_db derby.log dist build
