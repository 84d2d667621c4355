# The two commands that matter: `make run` (the platform on embedded servers) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CERBOS := tools/cerbos/cerbos
# Debian's Chromium, driven by Playwright in tests/console (Playwright's own downloads are not reachable here);
# only the tests need it, so `make run` does not install it.
CHROMIUM := /usr/bin/chromium
# make test PYTEST_ARGS="-k jobs"   |   make test-full (adds the full fault-injection suite)
# make evidence: every figure of docs/evidence.md in one run (about an hour)
PYTEST_ARGS ?=

.PHONY: install run test test-full lint typecheck policies deploy-check bench evidence clean

install: $(STAMP) $(CERBOS)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "Python 3.11 or 3.12 is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Without a GPU, take the CPU build of torch (an unpinned torch pulls several GB of CUDA).
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[train,embedded,dev]'
	touch $(STAMP)

$(CERBOS): scripts/install-cerbos.sh
	scripts/install-cerbos.sh >/dev/null

$(CHROMIUM):
	scripts/install-chromium.sh

run: install
	$(PY) -m app.devstack

lint: install
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench

typecheck: install
	$(VENV)/bin/mypy

policies: install
	$(CERBOS) compile policies

deploy-check: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/check-deploy.sh

test: install $(CHROMIUM) lint typecheck policies deploy-check
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra $(PYTEST_ARGS)

test-full: install $(CHROMIUM)
	FULL_CHAOS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 $(PY) bench/train_throughput.py
	HF_HUB_OFFLINE=1 $(PY) bench/embed_throughput.py

evidence: install
	scripts/evidence.sh

clean:
	rm -rf $(VENV) tools .mypy_cache .ruff_cache .pytest_cache
