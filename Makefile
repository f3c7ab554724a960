# b2b-platform: `make test` is what CI runs (.ci/run); see README for the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BLUEPRINT ?= blueprints/b2b-platform.json
STACK_CONFIG ?= Pulumi.dev.yaml
OUT ?= build/render
# checkov has its own virtualenv: its dependencies clash with ours (requirements-checkov.txt).
CHECKOV_VENV ?= .venv-checkov

.PHONY: test venv validate render checkov golden policy-config
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

test: venv checkov
	CHECKOV=$(CHECKOV_VENV)/bin/checkov $(PY) -m pytest

validate: venv
	$(PY) -m components validate $(BLUEPRINT) --stack-config $(STACK_CONFIG)

render: venv
	$(PY) -m components render $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out $(OUT)

# Re-render tests/golden/ (the seed with Pulumi.dev.yaml) and the README's diagram; review the diff.
golden: venv
	$(PY) tests/golden.py

# The policy pack's config for a stack: pulumi preview --policy-pack policy --policy-pack-config build/policy-config.json
policy-config: venv
	$(PY) -m components policy-config $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out build/policy-config.json
