# streamcoord: `make demo` and `make test` (see README.md). Needs Python 3.11+, Java 17, Maven.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest --durations=5

.PHONY: bench chaos fuzz demo test lint typecheck core-coverage pytest pytest-kafka-3.9 test-airflow kafka-stop serve-stop clean-venv

# A virtualenv with the project installed in editable mode, dev and streaming extras included;
# reinstalled when pyproject.toml changes.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"streamcoord needs Python 3.11+; run make with PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,streaming]"
	@touch $@

## demo: start a local Kafka broker (detached) and run the example pipelines end to end, with
## `streamcoord serve` alongside (its URL and admin token are printed at the end)
demo: $(INSTALLED)
	$(BIN)/streamcoord dev kafka --detach
	$(BIN)/streamcoord validate examples/
	$(BIN)/streamcoord demo
	@echo "Kafka and the API keep running; stop them with: make kafka-stop serve-stop"

kafka-stop: $(INSTALLED)
	$(BIN)/streamcoord dev kafka --stop

serve-stop: $(INSTALLED)
	$(BIN)/streamcoord demo --stop-serve

## test: lint, type-check, then the whole suite on Kafka 4.4.0 and, beside it, the broker tests
## on Kafka 3.9.2
# The two legs run at once, each on a broker of its own: most of their time is spent waiting on
# brokers (transactions, rebalances), not computing. Each leg's output is printed when it ends.
test: lint typecheck core-coverage
	$(MAKE) --no-print-directory -j2 --output-sync=target pytest pytest-kafka-3.9

# ruff (the core's banned clock, randomness and environment APIs included: TID251) and the
# import-linter contracts in pyproject.toml (layers, independence, a pure core).
lint: $(INSTALLED)
	$(BIN)/ruff check streamcoord tests bench chaos
	$(BIN)/ruff format --check streamcoord tests bench chaos
	$(BIN)/lint-imports --no-cache

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict

# The pure core's tests cover every branch of it (fail_under = 100 in the coveragerc).
core-coverage: $(INSTALLED)
	$(PYTEST) -q tests/unit/core --cov --cov-config=tests/unit/core/coveragerc

# Each pytest session starts its own broker (tests/kafka_fixtures.py); a broker named by
# STREAMCOORD_TEST_BOOTSTRAP is not used here, so that each leg runs on the version it names.
pytest: $(INSTALLED)
	env -u STREAMCOORD_TEST_BOOTSTRAP STREAMCOORD_TEST_KAFKA_VERSION=4.4.0 $(PYTEST)

# The second broker version checks what talks to Kafka itself: the coordinator, workers, emitters
# and the secured broker (tests/integration); the API, read model and executors above them use
# the same clients and run on 4.4.0 only.
pytest-kafka-3.9: $(INSTALLED)
	env -u STREAMCOORD_TEST_BOOTSTRAP STREAMCOORD_TEST_KAFKA_VERSION=3.9.2 $(PYTEST) -m kafka \
		tests/integration --ignore=tests/integration/test_dbt_process.py \
		--ignore=tests/integration/test_dbt_worker.py --ignore=tests/integration/test_airflow.py

## test-airflow: the Airflow executor and bridge against a real Airflow 3 (opt-in: installs it
## into a venv of its own once, then starts `airflow standalone`; about two minutes)
test-airflow: $(INSTALLED)
	env -u STREAMCOORD_TEST_BOOTSTRAP STREAMCOORD_TEST_AIRFLOW=1 $(PYTEST) tests/integration/test_airflow.py

clean-venv:
	rm -rf $(VENV)

## bench: end-to-end benchmarks (python -m bench; --bootstrap-servers to use a running broker)
bench: $(INSTALLED)
	$(BIN)/python -m bench

## chaos: the chaos suite (python -m chaos; about 8 minutes, its own broker and toxiproxy; needs Go
## once to build toxiproxy). Not part of `make test`; `make chaos CHAOS_ARGS="--quick --seed 7"`.
chaos: $(INSTALLED)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

## fuzz: coverage-guided fuzzing of the decision path (atheris); FUZZ_SECONDS=300 by default
FUZZ_SECONDS ?= 300
fuzz: $(INSTALLED)
	$(BIN)/python -m tests.fuzz.decision_target -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1
