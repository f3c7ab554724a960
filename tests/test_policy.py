"""The policy pack's validators on good and bad objects, and on everything the program renders."""

import copy
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, dev_config

from components import meta
from components.policyconfig import policy_config
from components.render import manifests, run_program
from components.settings import load_inputs
from policy import validators as v


def deployment(**pod) -> dict:
    spec = {
        "securityContext": meta.pod_security_context(),
        "containers": [
            {"name": "app", "image": "x:1", "securityContext": meta.container_security_context(), "env": []}
        ],
    }
    spec.update(pod)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "ns", "labels": {}},
        "spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": spec}},
    }


def with_env(*env) -> dict:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["env"] = list(env)
    return d


def test_pod_security():
    assert v.pod_security(deployment()) == []
    bad = deployment(hostNetwork=True)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert v.pod_security(bad) == ["not restricted: hostNetwork is set", "not restricted: app: privileged"]
    assert v.pod_security({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}) == []


def ns(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def netpol(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def test_default_deny():
    deny_both = netpol("a", "deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert v.default_deny([ns("a"), deny_both]) == []
    split = [netpol("a", "in", {"podSelector": {}}), netpol("a", "out", {"podSelector": {}, "policyTypes": ["Egress"]})]
    assert v.default_deny([ns("a"), *split]) == []
    # Ingress-only deny (policyTypes defaulted), a deny that selects some pods, one that allows, or in
    # another namespace: not enough.
    for policies in (
        [split[0]],
        [netpol("a", "p", {"podSelector": {"matchLabels": {"x": "y"}}, "policyTypes": ["Ingress", "Egress"]})],
        [netpol("a", "p", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "egress": [{}]})],
        [netpol("b", "deny", deny_both["spec"])],
    ):
        found = v.default_deny([ns("a"), *policies])
        assert found and all(obj["metadata"]["name"] == "a" for obj, _ in found)
        assert any("no default-deny egress" in m for _, m in found)
    assert v.default_deny([ns("a")], exempt=["a"]) == []


def service(namespace: str, typ: str, **extra) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": namespace},
        "spec": {"type": typ, **extra},
    }


def test_service_exposure():
    assert v.service_exposure(service("app", "ClusterIP"), "traefik") == []
    assert v.service_exposure(service("traefik", "LoadBalancer"), "traefik") == []
    assert "type NodePort outside" in v.service_exposure(service("app", "NodePort"), "traefik")[0]
    assert "type LoadBalancer outside" in v.service_exposure(service("app", "LoadBalancer"), "traefik")[0]
    assert "externalIPs" in v.service_exposure(service("app", "ClusterIP", externalIPs=["1.2.3.4"]), "traefik")[0]


def ingress(hosts, tls_hosts, annotations=None) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "namespace": "app", "annotations": annotations or {}},
        "spec": {
            "rules": [{"host": h} for h in hosts],
            **({"tls": [{"hosts": tls_hosts, "secretName": "t"}]} if tls_hosts else {}),
        },
    }


def test_ingress_tls():
    assert v.ingress_tls(ingress(["acme.app.acme.io", "admin-ui.app.acme.io"], ["*.app.acme.io"])) == []
    assert v.ingress_tls(ingress(["portal.acme-corp.test"], ["portal.acme-corp.test"])) == []
    # A wildcard covers one label only, and a missing tls section covers nothing.
    assert "'a.b.app.acme.io' has no TLS" in v.ingress_tls(ingress(["a.b.app.acme.io"], ["*.app.acme.io"]))[0]
    assert len(v.ingress_tls(ingress(["x.test", "y.test"], []))) == 2
    assert v.ingress_tls(ingress(["x.test"], [], {meta.TLS_ANNOTATION: "false"})) == []
    assert "accepted values" in v.ingress_tls(ingress(["x.test"], [], {meta.TLS_ANNOTATION: "no"}))[0]
    assert "without host" in v.ingress_tls(ingress([None], ["*.x.test"]))[0]


def test_plain_secrets_in_env():
    good = with_env(
        {"name": "PORT", "value": "8080"},
        meta.secret_env("DB_PASSWORD", "db-app", "password"),
        {"name": "TOKEN_FILE", "value": "/var/run/token"},
        {"name": "API_KEY", "value": "$(FROM_SECRET)"},
        {"name": "DATABASE_URL", "value": "postgres://app:$(DB_PASSWORD)@db:5432/app"},
        {"name": "SECRET_NAME", "value": ""},
    )
    assert v.plain_secrets(good) == []
    for env in (
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "stripeApiKey", "value": "sk_live"},
        {"name": "S3_SECRET_ACCESS_KEY", "value": "abc"},
        {"name": "REDIS_URL", "value": "redis://u:hunter2@cache:6379"},
    ):
        found = v.plain_secrets(with_env(env))
        assert len(found) == 1 and env["name"] in found[0], env


def test_plain_secrets_in_configmap():
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"nginx.conf": "events {}", "LOG_LEVEL": "info"},
    }
    assert v.plain_secrets(cm) == []
    cm["data"]["adminPassword"] = "x"
    cm["data"]["dsn"] = "amqp://guest:guest@mq/"
    assert len(v.plain_secrets(cm)) == 2


def cluster(instances: int, annotations=None, **affinity) -> dict:
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "db", "namespace": "app", "annotations": annotations or {}},
        "spec": {"instances": instances, "affinity": affinity},
    }


def test_cnpg_ha():
    zone = {"topologyKey": meta.ZONE_KEY, "podAntiAffinityType": "required"}
    ha = {meta.HA_ANNOTATION: "true"}
    assert v.cnpg_ha(cluster(3, ha, **zone)) == []
    assert v.cnpg_ha(cluster(1)) == []  # not HA: nothing asked
    assert v.cnpg_ha(cluster(3, {**ha, meta.RESILIENCE_ANNOTATION: "zona-unica"}, podAntiAffinityType="required")) == []
    assert "1 instance(s)" in v.cnpg_ha(cluster(1, ha, **zone))[0]
    assert len(v.cnpg_ha(cluster(2))) == 3  # instances > 1 is HA too: too few, host key, preferred
    assert "disables" in v.cnpg_ha(cluster(3, ha, enablePodAntiAffinity=False, **zone))[0]
    assert v.cnpg_ha({"apiVersion": "v1", "kind": "Cluster", "metadata": {"name": "x"}}) == []


def test_stateful_retained():
    db = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Database",
        "metadata": {"name": "d"},
        "spec": {"databaseReclaimPolicy": "retain"},
    }
    assert v.stateful_retained(db, protected=True, require_protect=True) == []
    assert v.stateful_retained(db, protected=False, require_protect=False) == []
    assert "protect" in v.stateful_retained(db, protected=False, require_protect=True)[0]
    dropped = copy.deepcopy(db)
    dropped["spec"]["databaseReclaimPolicy"] = "delete"
    assert "databaseReclaimPolicy" in v.stateful_retained(dropped, protected=True, require_protect=True)[0]
    stream = {
        "apiVersion": "jetstream.nats.io/v1beta2",
        "kind": "Stream",
        "metadata": {"name": "s"},
        "spec": {"name": "s"},
    }
    assert "preventDelete" in v.stateful_retained(stream, True, True)[0]
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "s"},
        "spec": {"volumeClaimTemplates": [{}], "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}},
    }
    assert v.stateful_retained(sts, True, True) == ["persistentVolumeClaimRetentionPolicy.whenDeleted must be 'Retain'"]
    # A purged layer's StatefulSet may take its claims along, and only that layer's.
    sts["metadata"]["labels"] = {meta.LAYER_LABEL: "archive"}
    assert v.stateful_retained(sts, False, False, purged=["archive"]) == []
    assert len(v.stateful_retained(sts, False, False, purged=["beacon"])) == 1
    assert (
        v.stateful_retained(
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"}, "spec": {}}, False, True
        )
        == []
    )
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "spec": {}}
    assert len(v.stateful_retained(pvc, False, True)) == 1
    assert v.stateful_retained(deployment(), False, True) == []


def test_known_tenant():
    labelled = deployment()
    labelled["metadata"]["labels"][meta.TENANT_LABEL] = "acme"
    assert v.known_tenant(labelled, ["acme", "globex"]) == []
    assert v.known_tenant(deployment(), []) == []
    assert "'acme' is not a known tenant (globex)" in v.known_tenant(labelled, ["globex"])[0]
    labelled["spec"]["template"]["metadata"]["labels"][meta.TENANT_LABEL] = "umbrella"
    assert [m.split(" ")[0] for m in v.known_tenant(labelled, ["acme"])] == ["pod"]


def test_every_check_is_configured_by_its_schema():
    """policy-config writes only keys the pack declares, so a typo cannot silently disable a check."""
    schemas = {c.name: c.config for c in v.CHECKS}
    assert len(schemas) == len(v.CHECKS)
    settings = load_inputs(dev_config(), root=ROOT).settings
    for name, values in policy_config(settings).items():
        assert name in schemas and set(values) <= set(schemas[name]), name


@pytest.fixture(
    scope="module",
    params=[{"protect": False}, {"protect": True}, {"protect": False, "archive": {"purge": True}}],
    ids=["dev-stack", "protect-true", "archive-purged"],
)
def stack_run(request):
    config = dev_config() | request.param
    settings = load_inputs(config, root=ROOT).settings
    run = run_program(config)
    resources = [(o, r.protect) for r in run.mocks.resources for o in manifests([r])]
    return resources, policy_config(settings)


def test_rendered_stack_has_no_violation(stack_run):
    resources, config = stack_run
    assert len(resources) > 10
    assert v.violations(resources, config) == {}


def test_violations_reports_by_policy_and_object(stack_run):
    resources, config = stack_run
    broken = [(copy.deepcopy(o), p) for o, p in resources if o["kind"] != "NetworkPolicy"]
    broken.append((service("saas-net", "NodePort"), False))
    found = v.violations(broken, config)
    assert set(found) == {"namespace-default-deny", "no-exposed-services"}
    assert found["no-exposed-services"] == [
        (
            "Service saas-net/s: type NodePort outside the edge controller namespace 'traefik'; use ClusterIP behind "
            "the Ingress"
        )
    ]


def test_pack_enforces_over_grpc():
    """Start the real pack (it prints its port and blocks) and drive it the way the Pulumi engine does."""
    grpc = pytest.importorskip("grpc")
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    def struct(value: dict):
        out = struct_pb2.Struct()
        out.update(value)
        return out

    def analyze(stub, obj: dict, typ: str) -> list[str]:
        request = analyzer_pb2.AnalyzeRequest(
            type=typ, properties=struct(obj), urn=f"urn:pulumi:dev::b2b-platform::{typ}::x", name="x"
        )
        return [d.policyName for d in stub.Analyze(request, timeout=30).diagnostics]

    # Launched the way the Python policy analyzer plugin launches a pack: `python -m pulumi.policy <engine> <dir>`.
    pack = os.path.join(ROOT, "policy")
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
        cwd=pack,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), proc.stderr.read() if proc.poll() is not None else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert info.name == "b2b-platform-guardrails"
            assert sorted(p.name for p in info.policies) == sorted(c.name for c in v.CHECKS)
            assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}

            exposed = service("app", "NodePort")
            assert analyze(stub, exposed, "kubernetes:core/v1:Service") == ["no-exposed-services"]
            assert analyze(stub, deployment(hostPID=True), "kubernetes:apps/v1:Deployment") == [
                "pod-security-restricted"
            ]
            assert analyze(stub, deployment(), "kubernetes:apps/v1:Deployment") == []
            config = analyzer_pb2.PolicyConfig(
                enforcementLevel=analyzer_pb2.MANDATORY, properties=struct({"edgeNamespace": "app"})
            )
            stub.Configure(
                analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"no-exposed-services": config}), timeout=30
            )
            assert analyze(stub, exposed, "kubernetes:core/v1:Service") == []

            stack = analyzer_pb2.AnalyzeStackRequest(
                resources=[
                    analyzer_pb2.AnalyzerResource(
                        type="kubernetes:core/v1:Namespace",
                        properties=struct(ns("a")),
                        urn="urn:pulumi:dev::b2b-platform::kubernetes:core/v1:Namespace::a",
                        name="a",
                    )
                ]
            )
            diagnostics = stub.AnalyzeStack(stack, timeout=30).diagnostics
            assert [d.policyName for d in diagnostics] == ["namespace-default-deny"] * 2
            assert diagnostics[0].urn.endswith("::a")
    finally:
        proc.kill()
        proc.wait()


def test_policy_config_cli_writes_the_stacks_values(tmp_path):
    out = tmp_path / "policy.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "components",
            "policy-config",
            os.path.join(ROOT, "blueprints", "b2b-platform.json"),
            "--stack-config",
            os.path.join(ROOT, "Pulumi.dev.yaml"),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == {
        "known-tenant-ids": {"tenants": ["acme", "globex", "initech"]},
        # The dev stack installs the add-ons: their operators' namespaces are theirs to police.
        "namespace-default-deny": {
            "exemptNamespaces": [
                "cert-manager",
                "cnpg-system",
                "keda",
                "metrics-server",
                "monitoring",
                "nack",
                "traefik",
            ]
        },
        "no-exposed-services": {"edgeNamespace": "traefik"},
        "stateful-data-retained": {"requireProtect": False, "purgedLayers": []},
    }
