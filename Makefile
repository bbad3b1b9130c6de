# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
LAKE   ?= ./lakehouse
DATA   ?= ./data/raw
PYTEST_ARGS ?=
# pytest-xdist workers of `make test` (tests/conftest.py groups the tests that share a fixture)
TEST_WORKERS ?= 2
DIST   ?= dist

.PHONY: demo test test-faults venv java lint bench cluster-test dist clean

$(BIN)/replenish: setup.py
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

venv: $(BIN)/replenish

java:
	@$(BIN)/python -c "from replenish_jobs.harness import check_java; check_java()" || exit 1

demo: venv java
	$(BIN)/replenish run-all --lake $(LAKE) --set generate.out=$(DATA)

test: venv java lint  # every test, the cluster's fault tests included
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-faults: venv java  # the fault tests on the standalone cluster alone (docs/operations.md, Faults and recovery)
	$(BIN)/python -m pytest -m faults $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check lib jobs tests benchmarks notebooks setup.py
	$(BIN)/ruff format --check lib jobs tests benchmarks notebooks setup.py
	$(BIN)/mypy lib jobs
	$(BIN)/mypy --explicit-package-bases benchmarks

BENCH_OUT ?= benchmarks/results/$(BENCH_STAMP)
BENCH_STAMP := $(shell date -u +%Y-%m-%dT%H%M)

bench: venv java  # about an hour on 2 cores; results under benchmarks/results/<UTC date and time>/
	@mkdir -p $(BENCH_OUT)
	$(BIN)/python -m benchmarks.forecast_bench --json $(BENCH_OUT)/forecast.json | tee $(BENCH_OUT)/forecast.md
	$(BIN)/python -m benchmarks.inventory_bench --json $(BENCH_OUT)/inventory.json | tee $(BENCH_OUT)/inventory.md
	$(BIN)/python -m benchmarks.lstm_bench --json $(BENCH_OUT)/lstm.json | tee $(BENCH_OUT)/lstm.md

dist: venv  # the wheel, and the same archive as .zip: PySpark puts only .zip/.egg/.jar of --py-files on executors' path
	$(BIN)/pip wheel --no-deps -w $(DIST) .
	for wheel in $(DIST)/replenish-*-py3-none-any.whl; do cp "$$wheel" "$${wheel%-py3-none-any.whl}.zip"; done

clean:
	rm -rf $(LAKE) $(DATA) spark-warehouse metastore_db derby.log dist build mlruns
