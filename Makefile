# b2b-platform: `make test` is what CI runs (.ci/run); `make up` is the kind quick start (README).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BLUEPRINT ?= blueprints/b2b-platform.json
STACK_CONFIG ?= Pulumi.dev.yaml
OUT ?= build/render
# checkov has its own virtualenv: its dependencies clash with ours (requirements-checkov.txt).
CHECKOV_VENV ?= .venv-checkov

# The stack's kube context names the kind cluster: one place to rename it (make e2e reads it too).
STACK_CONTEXT := $(shell sed -n 's/^ *kubernetes:context: *//p' $(STACK_CONFIG))
CLUSTER ?= $(STACK_CONTEXT:kind-%=%)
KIND_CONFIG ?= deploy/kind-config.yaml
# What `kind create cluster` gets: KIND_CONFIG as the stack's audit.kubernetes wants it.
KIND_CONFIG_OUT ?= build/kind-config.yaml
STACK ?= dev
# Pulumi state lives in the project (no account, and your own `pulumi login` stays untouched).
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
# Encrypts the dev stack's secrets in .pulumi-state. LOCAL DEVELOPMENT ONLY: it is public, in
# this file; a real stack gets its own passphrase or a KMS secrets provider.
export PULUMI_CONFIG_PASSPHRASE ?= b2b-platform-local-dev
PULUMI := pulumi --non-interactive

.PHONY: test lint fmt venv validate render up down outputs e2e prereqs shellcheck bench checkov golden policy-config diagram-tools config-reference
venv: $(VENV)/.installed
checkov: $(CHECKOV_VENV)/.installed
diagram-tools: node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

# mermaid-cli renders the README's architecture diagram in the suite (tests/test_diagram_image.py)
# with Debian's chromium (puppeteer.json), so puppeteer downloads no browser of its own. Without
# npm those tests skip, and fail under CI=true.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the diagram image tests will skip (and fail under CI=true)" >&2; fi

test: lint checkov diagram-tools
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

# Formatter, linter and type checker as configured in pyproject.toml; `make test` runs them first.
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Applies the formatter and the linter's safe fixes; review the diff.
fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: venv
	$(PY) -m components validate $(BLUEPRINT) --stack-config $(STACK_CONFIG)

render: venv
	$(PY) -m components render $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out $(OUT)

prereqs:
	@[ "kind-$(CLUSTER)" = "$(STACK_CONTEXT)" ] || { echo "CLUSTER=$(CLUSTER), but $(STACK_CONFIG) deploys to kube context '$(STACK_CONTEXT)': set its kubernetes:context to kind-$(CLUSTER) instead" >&2; exit 2; }
	PYTHON=$(PYTHON) scripts/prereqs.sh $(CLUSTER) $(KIND_CONFIG)

# `make up` needs the program's runtime only; `make test` adds the test tools to the same .venv.
$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# One command from a machine with Docker/Podman, kind, kubectl, Pulumi and Python to a running
# platform, safe to repeat after any interruption: the cluster is kept if it exists; the refresh
# reconciles the state with the cluster and drops creates an interrupted run left pending (their
# objects are then upserted: Pulumi.dev.yaml's kubernetes:upsertExistingObjects; a failed Helm
# install was uninstalled by `atomic`).
up: prereqs $(VENV)/.runtime
	$(PY) -m components kind-config $(BLUEPRINT) --stack-config $(STACK_CONFIG) --base $(KIND_CONFIG) --out $(KIND_CONFIG_OUT)
	scripts/kind-cluster.sh up $(CLUSTER) $(KIND_CONFIG_OUT)
	mkdir -p .pulumi-state
	$(PULUMI) whoami --verbose
	$(PULUMI) stack select --create $(STACK)
	$(PULUMI) refresh --yes --clear-pending-creates --stack $(STACK)
	# Refuse a change that would lose data (docs/changing-a-running-platform.md); a new stack has no output.
	-$(PULUMI) stack output deployed --json --stack $(STACK) > build/deployed.json 2>/dev/null
	$(PY) -m components check-change $(BLUEPRINT) --stack-config $(STACK_CONFIG) --previous build/deployed.json
	$(PULUMI) up --yes --stack $(STACK)

outputs:
	$(PULUMI) stack output --stack $(STACK)

# The cluster goes first (everything in it with it), then the stack's state, which only described
# that cluster: no slow, best-effort destroy. Kept: Pulumi.dev.yaml (--preserve-config), .venv,
# build/ and the .pulumi-state directory (without this stack or its backups).
down:
	scripts/kind-cluster.sh down $(CLUSTER)
	-$(PULUMI) stack rm --yes --force --preserve-config --remove-backups $(STACK)

# End-to-end check of a running kind stack (never part of `make test` or CI).
e2e: venv
	$(PY) -m pytest -m e2e tests/e2e

shellcheck:
	shellcheck scripts/*.sh .ci/run
# Not a test: a report of the program's cost against the Pulumi SDK floor (docs/scale.md).
bench: venv
	$(PY) -m benchmarks
# Re-render tests/golden/ (the seed with Pulumi.dev.yaml), the README's diagram and
# docs/configuration.md (from the pydantic models); review the diff.
golden: venv
	$(PY) tests/golden.py

# The policy pack's config for a stack: pulumi preview --policy-pack policy --policy-pack-config build/policy-config.json
policy-config: venv
	$(PY) -m components policy-config $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out build/policy-config.json

# Only the configuration reference (make golden refreshes it too).
config-reference: venv
	$(PY) -m components config-reference --out docs/configuration.md
