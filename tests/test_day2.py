"""Day-2 safety (README "Changing a running platform"): what a delete of each layer's data takes.

Pulumi `retain_on_delete` makes the engine drop a resource from the state without asking the
provider to delete it (pulumi/pulumi sdk/go/common/resource/resource_state.go `RetainOnDelete`,
honoured in pkg/resource/deploy/step_executor/step.go DeleteStep). It is on for every object
that holds a layer's data whatever the stack's `protect` says; only the layer's own `purge` turns
it off. The mocks record the options each registration really carried (components/render.py).
"""

import pytest
from conftest import ROOT, Rendered, dev_config

from components import kube
from components.problems import InvalidInput
from components.program import load_inputs
from components.render import run_program

# Every object whose deletion takes data with it, per purgeable layer (settings.PURGEABLE).
STATEFUL = {
    "datastore": ("platform-db-cluster", "platform-db-database", "platform-db-objectstore"),
    "archive": ("tenant-files-statefulset",),
    "beacon": ("lifecycle-statefulset", "lifecycle-stream"),
    "insight": ("tenant-obs-prometheus",),
}
EVERY = [name for names in STATEFUL.values() for name in names]


def render(overrides: dict) -> Rendered:
    return Rendered(run_program(dev_config() | overrides))


@pytest.fixture(scope="module", params=[False, True], ids=["unprotected", "protected"])
def protected_render(request):
    return request.param, render({"protect": request.param})


def test_stateful_data_is_retained_whatever_protect_says(protected_render):
    protect, rendered = protected_render
    for name in EVERY:
        registered = rendered.run.mocks.named(name)
        assert registered.retain_on_delete is True, name
        assert registered.protect is protect, name


@pytest.mark.parametrize("layer", sorted(STATEFUL))
def test_only_a_layers_purge_lets_its_data_go(layer):
    rendered = render({"protect": False, layer: {"purge": True}})
    for other, names in STATEFUL.items():
        for name in names:
            assert rendered.run.mocks.named(name).retain_on_delete is (other != layer), name


def test_a_purged_prometheus_deletes_its_claims():
    (prometheus,) = render({"insight": {"purge": True}}).kind("Prometheus")
    assert prometheus["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


@pytest.mark.parametrize("layer", sorted(STATEFUL))
def test_purge_on_a_protected_stack_is_refused(layer):
    config = dev_config() | {"protect": True, layer: {"purge": True}}
    with pytest.raises(InvalidInput) as info:
        load_inputs(config, root=ROOT)
    assert f"{layer}.purge: true needs protect: false" in str(info.value)


# Truthful `pulumi up`: the kinds whose readiness the platform depends on, each with the condition
# its operator sets (sources in components/kube.py AWAITED).
EXPECTED_WAITS = {
    "Cluster": "condition=Ready",
    "Certificate": "condition=Ready",
    "Stream": "condition=Ready",
    "Consumer": "condition=Ready",
    "Prometheus": "condition=Available",
    "ScaledObject": "condition=Ready",
}


def test_up_waits_for_every_custom_resource_the_platform_depends_on(seed_render):
    seen = set()
    for obj in seed_render.objects:
        annotations = obj["metadata"].get("annotations") or {}
        expected = EXPECTED_WAITS.get(obj["kind"])
        assert annotations.get(kube.WAIT_FOR) == expected, (obj["kind"], obj["metadata"]["name"])
        if expected:
            # The provider reads the timeout with strconv.Atoi (provider/pkg/metadata/overrides.go).
            assert int(annotations[kube.TIMEOUT_SECONDS]) >= 300
            seen.add(obj["kind"])
    assert seen == set(EXPECTED_WAITS)


def test_awaited_keeps_the_objects_own_annotations():
    props = {"metadata": {"name": "x", "annotations": {"b2b-platform.io/ha": "true"}}, "spec": {}}
    out = kube.awaited("kubernetes:postgresql.cnpg.io/v1:Cluster", props)
    assert out["metadata"]["annotations"] == {
        "b2b-platform.io/ha": "true",
        kube.WAIT_FOR: "condition=Ready",
        kube.TIMEOUT_SECONDS: "1800",
    }
    assert props["metadata"]["annotations"] == {"b2b-platform.io/ha": "true"}  # the caller's dict is untouched
    assert kube.awaited("kubernetes:postgresql.cnpg.io/v1:Pooler", props) is None
    assert kube.awaited("kubernetes:core/v1:Secret", props) is None


def test_the_fabric_namespace_outlives_a_rename_while_it_holds_data():
    namespace = "saas-net-namespace"
    assert render({}).run.mocks.named(namespace).retain_on_delete is True
    every_layer_purged = {"protect": False, **{layer: {"purge": True} for layer in STATEFUL}}
    assert render(every_layer_purged).run.mocks.named(namespace).retain_on_delete is False
    # One unpurged layer is enough to keep it.
    one_kept = {**every_layer_purged, "beacon": {"purge": False}}
    assert render(one_kept).run.mocks.named(namespace).retain_on_delete is True
