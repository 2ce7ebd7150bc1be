# cfai developer entry points. Only python3, node/npm and make are needed on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= local

.PHONY: setup local test fuzz lint typecheck render bench clean parity docs-excerpts

setup: $(VENV)/.installed node_modules/.installed

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

# Runs `cfai deploy --local` end to end (apply, canary, rollback, drift) and rewrites the
# excerpts docs/gitops.md and docs/deploy-canary.md quote from those runs; any other run of
# the test fails while they are stale.
docs-excerpts: setup
	@CFAI_DOCS_WRITE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/deploy/test_deploy_apply_local.py

render: setup
	@$(BIN)/cfai render

bench: setup
	@$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .cfai
