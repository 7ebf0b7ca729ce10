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

# Main job: a few minutes of training on a built-in dataset; writes samples, metrics and a checkpoint.
run: setup
	$(VENV)/bin/gankit train dcgan --preset cpu-digits --data 'builtin:digits?res=32' --out runs/quickstart --kimg 100

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts

bench: setup
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) runs
