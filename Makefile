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

# The browser the playground tests drive (Debian's chromium; tests/browser).
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup prerequisites local test check lint format-check typecheck unit suite fuzz parity render bench bench-tools clean docs-excerpts screenshots

setup: prerequisites $(VENV)/.installed node_modules/.installed

# Everything setup needs from the machine, checked before anything is installed, with one
# message naming every missing piece.
prerequisites:
	@missing=""; \
	found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	if [ -z "$$found" ]; then missing="$$missing\n  - $(PYTHON) (Python 3.11 or newer): not found"; \
	elif ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
		missing="$$missing\n  - $(PYTHON) is Python $$found; cfai needs 3.11 or newer (or: make setup PYTHON=python3.12)"; fi; \
	command -v node >/dev/null 2>&1 || missing="$$missing\n  - node (Node.js 20 or newer): not found"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing\n  - npm (comes with Node.js): not found"; \
	if [ -n "$$missing" ]; then \
		printf "make setup cannot start; install these first:$$missing\n" >&2; exit 1; fi

# Only the tests need it (`make local` does not): installed with apt (sudo -n when not root);
# a machine where that fails stops here with the command to run, rather than the browser
# tests failing later.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null \
	|| { $$sudo apt-get update -q >/dev/null && \
	     $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
	|| { echo "make setup: could not install Debian's chromium for the browser tests;" \
	          "run: sudo apt-get install chromium" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setup 1/3: creating $(VENV) with $$($(PYTHON) --version)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "setup 2/3: installing the locked Python packages (constraints.txt; 1-3 minutes)"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@# Type-check once now: mypy caches what it read of the installed packages (pulumi and
	@# pulumi-cloudflare are large), so the first `make check` does not pay for it.
	@$(BIN)/mypy >/dev/null 2>&1 || true
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "setup 3/3: installing workerd and wrangler from npm (package-lock.json)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@
	@echo "setup done: .venv/bin/cfai --help"

local: setup
	@$(BIN)/cfai local up --stack $(STACK) --demo

# Everything: lint, types and every test, the process-starting ones (marker `platform`)
# included; mypy runs beside the tests (`make suite` or `make unit` alone: just the tests).
test: setup $(CHROMIUM)
	@$(MAKE) --no-print-directory -j2 format-check typecheck suite

# The property tests over the emulator's and the router's surface with 5,000 generated
# requests (`make test` runs 300, derandomized); prints the count of answers per status.
fuzz: setup
	@CFAI_FUZZ_CASES=5000 $(PYTEST) -q -s -p no:cacheprovider \
		-k "every_generated_request or every_request_through_the_router" \
		tests/local/test_emulator_fuzz.py tests/local/test_local_router.py

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

# Whole modules per worker (some build on their earlier tests' state, in file order).
# `--dist loadgroup` would keep the session platform's tests in one worker, but with
# pytest 9.2 and xdist 3.8 its groups are not honoured (each test is scheduled alone), so
# each worker may start its own session platform.
suite:
	@$(PYTEST) -q -n $(JOBS) --dist loadfile

# Runs the parity suite (Cloudflare's own clients against the local platform) and rewrites
# docs/parity.md from its outcomes; any other run of the suite fails while the file is stale.
parity: setup
	@CFAI_PARITY_WRITE=1 $(PYTEST) -q tests/parity

# Screenshots of the playground pages (docs/screenshots/, shown in README), taken by the
# browser tests after each page's scenario.
screenshots: setup $(CHROMIUM)
	@mkdir -p docs/screenshots
	@CFAI_SCREENSHOTS=$(CURDIR)/docs/screenshots $(PYTEST) -q -p no:cacheprovider \
		tests/browser -k "streams or matched or renders or spoken"

# Runs `cfai deploy --local` end to end (apply, canary, rollback, drift) and rewrites the
# excerpts docs/gitops.md and docs/deploy-canary.md quote from those runs; any other run of
# the test fails while they are stale.
docs-excerpts: setup
	@CFAI_DOCS_WRITE=1 $(PYTEST) -q -p no:cacheprovider tests/deploy/test_deploy_apply_local.py

render: setup
	@$(BIN)/cfai render

bench: setup bench-tools
	@$(BIN)/python -m bench

# The load figures use wrk, the Debian package (a C load generator); without it `make bench`
# skips them and says why.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
		$$SUDO apt-get install -y -q wrk >/dev/null 2>&1 \
		|| { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q wrk >/dev/null 2>&1; } \
		|| echo "bench: could not install wrk (apt-get install -y wrk); its figures will be skipped"; }

clean:
	rm -rf $(VENV) node_modules .cfai
