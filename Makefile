# b2b-platform: `make test` is what CI runs (.ci/run); see README for the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BLUEPRINT ?= blueprints/b2b-platform.json
STACK_CONFIG ?= Pulumi.dev.yaml
OUT ?= build/render

.PHONY: test venv validate render bench
venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: venv
	$(PY) -m pytest

validate: venv
	$(PY) -m components validate $(BLUEPRINT) --stack-config $(STACK_CONFIG)

render: venv
	$(PY) -m components render $(BLUEPRINT) --stack-config $(STACK_CONFIG) --out $(OUT)

# Not a test: a report of the program's cost against the Pulumi SDK floor (README "Scale").
bench: venv
	$(PY) -m benchmarks
