# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test quick install dev clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(PY) pyproject.toml
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PY) -m pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

demo: $(VENV)/.installed
	$(BIN)/ganforge train wgan_gp/demo name=demo-$$(date +%Y%m%d-%H%M%S)
	@echo "Sample grids are in runs/demo-*/samples/ (the newest is the last); checkpoints in runs/demo-*/checkpoints/."

test: $(VENV)/.dev-installed
	$(PY) -m pytest -q

# The fast part of the suite for the edit-test loop (under a minute on 2 cores): every test but the
# ones marked slow (processes, official-size networks, long trainings). CI runs `make test`.
quick: $(VENV)/.dev-installed
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf runs .pytest_cache
