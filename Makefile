# cfai developer entry points. Only python3, node/npm and make are needed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= local

.PHONY: setup local test fuzz lint typecheck render bench clean parity screenshots

# The browser the playground tests drive (Debian's chromium; tests/browser).
CHROMIUM ?= /usr/bin/chromium

setup: $(VENV)/.installed node_modules/.installed $(CHROMIUM)

# Installed with apt (sudo -n when not root); a machine where that fails stops here with the
# command to run, rather than the browser tests failing later.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo -n"; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null \
	|| { $$sudo apt-get update -q >/dev/null && \
	     $$sudo apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
	|| { echo "make setup: could not install Debian's chromium for the browser tests;" \
	          "run: sudo apt-get install chromium" >&2; exit 1; }

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

local: setup
	@$(BIN)/cfai local up --stack $(STACK) --demo

test: setup lint
	@$(BIN)/python -m pytest

# The property tests over the emulator's and the router's surface with 5,000 generated
# requests (`make test` runs 300, derandomized); prints the count of answers per status.
fuzz: setup
	@CFAI_FUZZ_CASES=5000 $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		-k "every_generated_request or every_request_through_the_router" \
		tests/local/test_emulator_fuzz.py tests/local/test_local_router.py

lint: setup
	@$(BIN)/ruff format --check cfai tests bench
	@$(BIN)/ruff check cfai tests bench
	@$(BIN)/mypy

# Runs the parity suite (Cloudflare's own clients against the local platform) and rewrites
# docs/parity.md from its outcomes; any other run of the suite fails while the file is stale.
parity: setup
	@CFAI_PARITY_WRITE=1 $(BIN)/python -m pytest -q tests/parity

# Screenshots of the playground pages (docs/screenshots/, shown in README), taken by the
# browser tests after each page's scenario.
screenshots: setup
	@mkdir -p docs/screenshots
	@CFAI_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/browser -k "streams or matched or renders or spoken"

render: setup
	@$(BIN)/cfai render

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .cfai
