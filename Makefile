# cfai developer entry points. Only python3, node/npm and make are needed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= local

# Tests start workerd, the emulator and node, and call the cfai CLI many times: let Python
# keep its bytecode (some environments switch that off), or every process compiles cfai anew.
unexport PYTHONDONTWRITEBYTECODE
# xdist workers for the whole suite: 2 by default (`make test JOBS=auto` for every core).
JOBS ?= 2
PYTEST := $(BIN)/python -m pytest

.PHONY: setup local test check lint format-check typecheck unit suite render bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@# Type-check once now: mypy caches what it read of the installed packages (pulumi and
	@# pulumi-cloudflare are large), so the first `make check` does not pay for it.
	@$(BIN)/mypy >/dev/null 2>&1 || true
	@touch $@

node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

local: setup
	@$(BIN)/cfai local up --stack $(STACK) --demo

# Everything: lint, types and every test, the process-starting ones (marker `platform`)
# included; mypy runs beside the tests (`make suite` or `make unit` alone: just the tests).
test: setup
	@$(MAKE) --no-print-directory -j2 format-check typecheck suite

# The fast lane: lint, types and every test that starts no process (`-m "not platform"`).
check: setup
	@$(MAKE) --no-print-directory -j2 format-check typecheck unit

lint: setup format-check typecheck

format-check:
	@$(BIN)/ruff format --check cfai tests bench
	@$(BIN)/ruff check cfai tests bench

typecheck:
	@$(BIN)/mypy

# One process: these tests wait on nothing, and a second xdist worker would collect (import)
# everything again while mypy already has the other core.
unit:
	@$(PYTEST) -q -m "not platform"

suite:
	@$(PYTEST) -q -n $(JOBS) --dist loadgroup

render: setup
	@$(BIN)/cfai render

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .cfai
