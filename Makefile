# Entry points. `make evaluate` and `make test` are the only set-up a fresh machine needs:
# they create .venv from the locked requirements, install this package and its Jupyter kernel.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
OUT    ?= reports
# DATA: a data file or directory in the data contract; empty means the built-in synthetic set.
DATA   ?=
SEED   ?= 2023
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
LINTED := analysis tests notebooks benchmarks
# The models are small (about 80 x 20): parallelism is by process, one per core, and a
# multithreaded BLAS inside each process only oversubscribes the cores.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: evaluate test test-fast lint setup environment lock benchmark clean

evaluate: $(STAMP)
ifeq ($(strip $(DATA)),)
	$(PY) -m analysis synth --out data/synthetic --seed $(SEED)
	$(PY) -m analysis run --data data/synthetic --out $(OUT) --workers $(WORKERS)
else
	$(PY) -m analysis run --data $(DATA) --out $(OUT) --workers $(WORKERS)
endif

test: $(STAMP) lint
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup -q

test-fast: $(STAMP) lint
	$(PY) -m pytest -n $(WORKERS) -q -m "not slow and not e2e"

# The layer contracts (pyproject.toml, import-linter), ruff's lint and its format check.
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

setup: $(STAMP)

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name plan-its --display-name "Python (plan-its)" >/dev/null
	rm -f $(VENV)/.installed-*
	touch $@

# environment.yml is generated from pyproject.toml (tests/test_environment.py checks they agree).
environment: $(STAMP)
	$(PY) -m analysis.devtools.environment --write environment.yml

# Refresh requirements.lock after changing a pin in pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e ".[test]"
	.lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -viE '^(pip|plan-its)==' > requirements.lock
	rm -rf .lock-venv

benchmark: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf build data/synthetic
	find $(OUT) -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
