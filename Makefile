# Enclose: the two front-door commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS_VENV := .venv-tools
PY := $(VENV)/bin/python
ORG ?= A12345
USER_ID ?= gp1

.PHONY: run test token setup system-deps tools lint bench clean

## run: start Azurite, ClamAV, the SMS emulator and the Functions host in the foreground
run: setup
	@$(PY) -m devstack.run

## test: install what the tests need (ClamAV, Chromium, LibreOffice as root) and run the suite
test: setup system-deps tools
	@$(PY) -m pytest $(PYTEST_ARGS)

## token: print a bearer token for the local issuer
token: setup
	@$(PY) -m devstack.devtoken --org $(ORG) --user $(USER_ID)

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json devstack/portal_assets.py
	@command -v npm >/dev/null || { echo "Node.js 20+ and npm are needed" >&2; exit 1; }
	@npm ci --no-audit --no-fund --loglevel=error
	@$(PY) -m devstack.portal_assets
	@touch $@

system-deps:
	@bash scripts/install-system-deps.sh

tools: $(TOOLS_VENV)/.installed

$(TOOLS_VENV)/.installed: requirements-tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	@$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

lint: setup
	@$(VENV)/bin/ruff check .

bench: setup system-deps
	@$(PY) -m bench

clean:
	rm -rf $(VENV) $(TOOLS_VENV) node_modules .pytest_cache test-artifacts
