# gankit set-up and main commands. `make run` and `make test` are the README Quickstart.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint bench clean

# Set-up: create .venv, install the pinned CPU torch first (so no CUDA build is pulled), then gankit[dev].
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Main job: a small StyleGAN2 on the built-in shapes (`quickstart` preset, 2-4 minutes of training on
# 2 cores); writes a sample grid,
# a truncation strip (psi 1 -> 0), metrics.json and a checkpoint. A second `make run` starts a fresh run.
run: setup
	rm -rf runs/quickstart
	$(VENV)/bin/gankit train stylegan2 --preset quickstart --data 'builtin:shapes?res=32' --out runs/quickstart

# Tests: one pytest-xdist worker per core, each with one torch thread (tests/conftest.py), the long
# tests spread by work stealing. `make test WORKERS=0` runs them in one process, one after another.
WORKERS ?= auto
test: setup
	$(PY) -m pytest -q -n $(WORKERS) --dist worksteal tests

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: setup
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/stylegan2_speed.py

clean:
	rm -rf $(VENV) runs
