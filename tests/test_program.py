import gc

import pulumi
import pytest
from conftest import dev_config
from conftest import seed as seed_blueprint

from components.program import FULL_GC_EVERY
from components.render import RecordingMocks, run_program


def seed():
    return seed_blueprint()["recursos"]


def test_main_with_dev_stack_builds_the_platform(seed_render):
    types = [r.typ for r in seed_render.run.mocks.resources]
    assert types.count("b2b-platform:platform:Platform") == 1
    assert types.count("b2b-platform:fabric:Fabric") == 1
    assert types.count("b2b-platform:compute:Compute") == 2
    assert types.count("b2b-platform:autoscale:Autoscale") == 1
    assert types.count("b2b-platform:sentinel:Sentinel") == 1
    assert types.count("b2b-platform:gateway:Gateway") == 1
    assert types.count("b2b-platform:datastore:Datastore") == 1
    assert seed_render.run.exports["namespace"] == "saas-net"
    assert seed_render.run.exports["computes"] == {"tenant-api": "tenant-api", "admin-ui": "admin-ui"}
    assert seed_render.run.exports["autoscalers"] == {"api-scale": "ScaledObject"}
    assert seed_render.run.exports["sentinels"] == {"edge-waf": "On"}
    assert seed_render.run.exports["hosts"] == ["admin-ui.app.acme.io", "*.app.acme.io", "portal.acme-corp.test"]
    assert seed_render.run.exports["localCa"] == {"namespace": "cert-manager", "name": "b2b-local-ca", "key": "ca.crt"}


def test_children_are_parented_by_their_component(seed_render):
    mocks = seed_render.run.mocks
    # Every component's children are named after it (`<name>-<role>`), and nothing else is.
    names = [r.name for r in mocks.resources if r.custom]
    prefixes = (
        "addons",
        "saas-net",
        "tenant-api",
        "admin-ui",
        "api-scale",
        "edge-waf",
        "wildcard-dns",
        "tenant-obs",
        "platform-db",
        "tenant-files",
        "lifecycle",
    )
    assert all(any(n.startswith(prefix + "-") for prefix in prefixes) for n in names)


def test_every_blueprint_layer_has_its_component(seed_render):
    components = {(r.typ.split(":")[1], r.name) for r in seed_render.run.mocks.resources if not r.custom}
    for r in seed():
        assert (r["tipo"], r["nome"]) in components, r["nome"]
    # The dev stack configures no OIDC: the only warning says the admin UI has no login in front.
    assert [w.split(":")[0] for w in seed_render.run.warnings] == ["admin UI unauthenticated"]


def test_invalid_input_stops_before_any_resource():
    config = dev_config() | {"tenants": [{"id": "www", "plan": "gold", "isolation": "schema"}]}
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as info:
        run_program(config, mocks=mocks)
    assert mocks.resources == []
    message = str(info.value)
    assert "tenants[0].plan: must be 'business' or 'enterprise' (got 'gold')" in message
    assert "Traceback" not in message


def test_invalid_input_registers_nothing():
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as info:
        run_program(dev_config() | {"blueprint": "blueprints/missing.json"}, mocks=mocks)
    assert "blueprint: cannot read 'blueprints/missing.json': No such file or directory" in str(info.value)
    assert mocks.resources == []


def test_the_program_runs_full_garbage_collections_less_often():
    saved = gc.get_threshold()
    gc.set_threshold(500, 7, 10)
    try:
        run_program(dev_config())
        # Young-generation thresholds are left as found; only full collections are spaced out.
        assert gc.get_threshold() == (500, 7, FULL_GC_EVERY)
    finally:
        gc.set_threshold(*saved)
