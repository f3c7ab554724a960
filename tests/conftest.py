"""Shared fixtures: the one recording mock run, the dev stack's config, blueprint variants.

Every test gets fresh Pulumi state: `run_program` builds a new event loop, root stack,
mocks and config each time (components/render.py holds the `RecordingMocks` itself, so
the render CLI and the tests record through the same class).
"""

from __future__ import annotations

import copy
import json
import os
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from components.render import SECRET_SIG, Run, manifests, run_program  # noqa: E402

SEED = os.path.join(ROOT, "blueprints", "b2b-platform.json")


def dev_config() -> dict:
    """The dev stack's `b2b-platform:*` keys, as native values."""
    with open(os.path.join(ROOT, "Pulumi.dev.yaml"), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)["config"]
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("b2b-platform:")}


def seed() -> dict:
    with open(SEED, encoding="utf-8") as fh:
        return json.load(fh)


def variant(tmp_path, edit=None, name: str = "variant.json") -> str:
    """Write a copy of the seed blueprint, changed by `edit(bp)`, and return its path."""
    bp = seed()
    if edit:
        edit(bp)
    path = tmp_path / name
    path.write_text(json.dumps(bp))
    return str(path)


def resource(bp: dict, nome: str) -> dict:
    return next(r for r in bp["recursos"] if r["nome"] == nome)


# The local services the suite tests against for real (the machine runs them; CI too).
TEST_DSN = os.environ.get("B2B_TEST_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
TEST_NATS_URL = os.environ.get("B2B_TEST_NATS_URL", "nats://127.0.0.1:4222")


def unavailable(reason: str):
    """A test needs a local service or tool it cannot find: fail on CI (it must run there), skip elsewhere.

    Also usable at a test module's top level (the whole module then fails or skips)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason, allow_module_level=True)


def revealed(value):
    """A recorded mock input with Pulumi's secret wrappers removed: what the API server would store."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return revealed(value["value"])
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [revealed(v) for v in value]
    return value


def child_protection(build) -> dict[str, bool]:
    """Run `build()` (which returns a component) under mocks; Pulumi `protect` of each child by name.

    The mock engine never sees resource options, so this reads them off the SDK objects.
    """
    built = {}
    run_program({}, program=lambda: built.setdefault("component", build()))
    return {child._name: bool(child._protect) for child in built["component"]._childResources}


class Rendered:
    """One program run and the manifests it produced, with lookups for assertions."""

    def __init__(self, run: Run):
        self.run = run
        self.objects = manifests(run.mocks.resources)

    def kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [o for o in self.kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.kind(kind)}


@pytest.fixture
def render():
    """render(config_overrides, blueprint_path=None) → Rendered for the dev stack plus overrides."""

    def _render(overrides: dict | None = None, blueprint: str | None = None, **kwargs) -> Rendered:
        config = copy.deepcopy(dev_config())
        config.update(overrides or {})
        if blueprint:
            config["blueprint"] = blueprint
        return Rendered(run_program(config, **kwargs))

    return _render


@pytest.fixture(scope="session")
def seed_render() -> Rendered:
    """The seed blueprint with the dev stack; read-only, shared for speed."""
    return Rendered(run_program(dev_config()))
