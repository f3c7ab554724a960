import pulumi
import pytest

from components.render import RecordingMocks, run_program
from conftest import dev_config


def test_main_with_dev_stack_builds_the_platform(seed_render):
    types = [r.typ for r in seed_render.run.mocks.resources]
    assert types.count("b2b-platform:platform:Platform") == 1
    assert types.count("b2b-platform:fabric:Fabric") == 1
    assert types.count("b2b-platform:compute:Compute") == 2
    assert types.count("b2b-platform:autoscale:Autoscale") == 1
    assert seed_render.run.exports["namespace"] == "saas-net"
    assert seed_render.run.exports["computes"] == {"tenant-api": "tenant-api", "admin-ui": "admin-ui"}
    assert seed_render.run.exports["autoscalers"] == {"api-scale": "ScaledObject"}


def test_children_are_parented_by_their_component(seed_render):
    mocks = seed_render.run.mocks
    # Every component's children are named after it (`<name>-<role>`), and nothing else is.
    names = [r.name for r in mocks.resources if r.custom]
    assert all(any(n.startswith(prefix + "-") for prefix in ("saas-net", "tenant-api", "admin-ui", "api-scale", "tenant-files", "lifecycle")) for n in names)


def test_unbuilt_layers_are_named_in_a_warning(seed_render):
    (warning,) = [w for w in seed_render.run.warnings if "not deployed" in w]
    for name in ("platform-db (datastore)", "edge-waf (sentinel)", "wildcard-dns (gateway)", "tenant-obs (insight)"):
        assert name in warning
    assert "archive" not in warning and "beacon" not in warning


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
