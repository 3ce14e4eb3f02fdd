# Enclose: the two front-door commands are `make run` and `make test` (see README.md); `make help`
# lists every target. A public target has a `## name: one line` comment just above its rule, which
# `make help` prints, so the list cannot drift from the rules.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS_VENV := .venv-tools
PY := $(VENV)/bin/python
ORG ?= A12345
USER_ID ?= gp1
# Hash-checking mode: every package, transitive ones too, must match a hash in the lock files.
PIP_INSTALL := -m pip install --quiet --disable-pip-version-check --require-hashes
# The locks hold every platform's files for Python 3.11+, so Azure's Linux build and any developer's
# machine install the same versions. Pass e.g. LOCK_ARGS="--upgrade-package certifi" to move a pin.
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_ARGS)

# Plain `make` only lists the targets: it neither installs system packages nor starts servers.
.DEFAULT_GOAL := help

.PHONY: help run test test-unit lint lock token setup run-deps system-deps tools bench smoke clean

## help: list the public targets, one line each
help:
	@awk '/^## [a-z-]+: / { sub(/^## /, ""); i = index($$0, ": "); \
		printf "  make %-12s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2) }' $(firstword $(MAKEFILE_LIST))

## run: start Azurite, ClamAV, the SMS emulator and the Functions host in the foreground
run: setup run-deps
	@$(PY) -m devstack.run

## test: lint, install what the tests need (ClamAV, Chromium, LibreOffice as root), run the suite
test: lint setup system-deps tools
	@$(PY) -m pytest $(PYTEST_ARGS)

## test-unit: the unit tier alone, in seconds: only the venv, no services or system packages
test-unit: $(VENV)/.installed
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

## lint: ruff check and ruff format --check over the tree (make test runs it first)
lint: $(VENV)/.installed
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

## lock: regenerate requirements*.txt (pinned, hashed) from requirements*.in; commit both
lock: $(VENV)/.installed
	@$(LOCK) requirements.in -o requirements.txt
	@$(LOCK) requirements-dev.in -o requirements-dev.txt
	@$(LOCK) requirements-tools.in -o requirements-tools.txt

## token: print a bearer token for the local issuer
token: setup
	@$(PY) -m devstack.devtoken --org $(ORG) --user $(USER_ID)

## setup: create .venv from the lock files and install the npm packages (run and test do this)
setup: $(VENV)/.installed node_modules/.installed

# The stamp is older than a lock file that changed (a pull, `make lock`), so pip installs again.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) $(PIP_INSTALL) -r requirements.txt -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json devstack/portal_assets.py
	@command -v npm >/dev/null || { echo "Node.js 20+ and npm are needed" >&2; exit 1; }
	@npm ci --no-audit --no-fund --loglevel=error
	@$(PY) -m devstack.portal_assets
	@touch $@

## run-deps: install ClamAV from Debian (as root) when missing; stop with one sentence where it cannot
run-deps:
	@bash scripts/install-system-deps.sh run

## system-deps: install from Debian (as root) what the tests lack: ClamAV, Chromium, LibreOffice
system-deps:
	@bash scripts/install-system-deps.sh test

## tools: put checkov in its own venv, .venv-tools, from requirements-tools.txt
tools: $(TOOLS_VENV)/.installed

$(TOOLS_VENV)/.installed: requirements-tools.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	@$(TOOLS_VENV)/bin/python $(PIP_INSTALL) -r requirements-tools.txt
	@touch $@

## bench: run the performance benchmarks and print them as tables
bench: setup system-deps
	@$(PY) -m bench

# TOKEN reaches the script through the environment (make exports command-line variables), never argv.
## smoke: check a deployed app: make smoke URL=https://... TOKEN=... MOBILE=<yours> [NO_SMS=1]
smoke:
	@bash scripts/smoke.sh --url "$(URL)" --mobile "$(MOBILE)" $(if $(NO_SMS),--no-sms) $(SMOKE_ARGS)

## clean: remove both venvs, node_modules and test output
clean:
	rm -rf $(VENV) $(TOOLS_VENV) node_modules .pytest_cache test-artifacts
