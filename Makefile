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

CLUSTER ?= b2b-platform
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

.PHONY: test lint fmt venv validate render up down outputs e2e prereqs shellcheck bench checkov golden policy-config
venv: $(VENV)/.installed
checkov: $(CHECKOV_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

test: lint checkov
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
	scripts/prereqs.sh

# One command from a machine with Docker/Podman, kind, kubectl and Pulumi to a running platform.
# Every step is safe to repeat: the cluster is kept if it exists, and --refresh reconciles the
# state with whatever cluster is there (also one re-created behind Pulumi's back).
up: prereqs venv
	$(PY) -m components kind-config $(BLUEPRINT) --stack-config $(STACK_CONFIG) --base $(KIND_CONFIG) --out $(KIND_CONFIG_OUT)
	scripts/kind-cluster.sh up $(CLUSTER) $(KIND_CONFIG_OUT)
	mkdir -p .pulumi-state
	$(PULUMI) whoami --verbose
	$(PULUMI) stack select --create $(STACK)
	$(PULUMI) up --yes --refresh --stack $(STACK)

outputs:
	$(PULUMI) stack output --stack $(STACK)

# Best effort: a cluster that is already gone can't be destroyed, and deleting it is enough.
down:
	-$(PULUMI) destroy --yes --stack $(STACK)
	scripts/kind-cluster.sh down $(CLUSTER)

# End-to-end check of a running kind stack (never part of `make test` or CI).
e2e: venv
	$(PY) -m pytest -m e2e tests/e2e

shellcheck:
	shellcheck scripts/*.sh .ci/run
# Not a test: a report of the program's cost against the Pulumi SDK floor (README "Scale").
bench: venv
	$(PY) -m benchmarks
# Re-render tests/golden/ (the seed with Pulumi.dev.yaml) and the README's diagram; review the diff.
golden: venv
	$(PY) tests/golden.py

# The policy pack's config for a stack: pulumi preview --policy-pack policy --policy-pack-config build/policy-config.json
policy-config: venv
	$(PY) -m components policy-config $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out build/policy-config.json
