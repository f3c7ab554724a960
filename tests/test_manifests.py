"""Every object every valid blueprint renders: schema-valid (strict) and restricted-compliant."""

import glob
import os

import pytest
from conftest import ROOT, Rendered, dev_config
from schema_check import validate

from components import meta
from components.podsecurity import pod_spec, restricted_violations
from components.render import run_program

BLUEPRINTS = sorted(
    glob.glob(os.path.join(ROOT, "blueprints", "*.json"))
    + [p for p in glob.glob(os.path.join(ROOT, "blueprints", "examples", "*.json")) if not p.endswith("invalid.json")]
)


def config_for(blueprint: str) -> dict:
    """The dev stack for the seed; without its tenants for the examples (their domains may differ)."""
    config = (
        dev_config()
        if blueprint.endswith("b2b-platform.json")
        else {k: v for k, v in dev_config().items() if k != "tenants"}
    )
    config["blueprint"] = blueprint
    return config


@pytest.fixture(scope="module", params=BLUEPRINTS, ids=lambda p: os.path.relpath(p, ROOT))
def rendered(request) -> Rendered:
    return Rendered(run_program(config_for(request.param)))


def test_every_object_is_schema_valid(rendered):
    assert rendered.objects
    errors = {f"{o['kind']}/{o['metadata']['name']}": validate(o) for o in rendered.objects}
    assert {k: v for k, v in errors.items() if v} == {}


def test_every_pod_template_is_restricted(rendered):
    pods = [(o["metadata"]["name"], pod_spec(o)) for o in rendered.objects if pod_spec(o) is not None]
    assert pods
    assert {name: restricted_violations(spec) for name, spec in pods if restricted_violations(spec)} == {}


def test_no_host_access_and_no_exposed_services(rendered):
    for o in rendered.kind("Service"):
        assert o["spec"].get("type", "ClusterIP") == "ClusterIP", o["metadata"]["name"]


def test_pods_run_as_high_uids_except_the_waf(rendered):
    """What CKV_K8S_40 (skipped in .checkov.yaml for the WAF alone) would check."""
    low = {}
    for o in rendered.objects:
        spec = pod_spec(o)
        if spec is None:
            continue
        uids = {spec.get("securityContext", {}).get("runAsUser")} | {
            c.get("securityContext", {}).get("runAsUser") for c in spec.get("initContainers", []) + spec["containers"]
        }
        if any(uid is not None and uid < 10000 for uid in uids):
            low[o["metadata"]["name"]] = o["metadata"]["labels"][meta.LAYER_LABEL]
    assert set(low.values()) <= {"sentinel"}, low


def test_validators_catch_bad_objects():
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {},
            "template": {"spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}]}},
            "replicas": "3",
        },
    }
    assert validate(deployment)
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"name": "d"}, "triggers": [], "unknownField": 1},
    }
    assert any("unknownField" in e for e in validate(scaled))
    root = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}],
    }
    found = restricted_violations(root)
    assert "hostNetwork is set" in found and "c: allowPrivilegeEscalation is not false" in found
    assert "c: runAsNonRoot is not true" in found and "c: capabilities do not drop ALL" in found
    assert any("hostPath" in f for f in found)
