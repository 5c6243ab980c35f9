# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   - collect data, train BC and IQL, show offline RL beating both (a few minutes)
#   make test   - lint and the whole test suite
# Each creates or reuses .venv and installs armfarm into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.armfarm-installed

.PHONY: demo test lint install bench-speed bench-store bench-fleet clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/armfarm demo --out demo_out

lint: $(STAMP)
	$(BIN)/ruff check armfarm tests benchmarks

test: lint
	$(BIN)/python -m pytest -q -ra --durations=15

bench-speed: $(STAMP)
	$(BIN)/python benchmarks/speed.py

bench-store: $(STAMP)
	$(BIN)/python benchmarks/store_format.py
	$(BIN)/python benchmarks/store_memory.py

bench-fleet: $(STAMP)
	$(BIN)/python benchmarks/fleet_load.py

clean:
	rm -rf demo_out .pytest_cache .ruff_cache
