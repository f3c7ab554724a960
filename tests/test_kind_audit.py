"""The kind cluster's API-server audit log, offline: the policy, its wiring, the switch.

Nothing here runs an API server. The policy is checked by a small matcher that follows the
API server's rule semantics (k8s.io/apiserver pkg/audit/policy/checker.go: the first rule
whose users, groups, verbs and resource or URL selectors all match decides the level).
"""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
from dataclasses import dataclass

import pytest
import yaml
from conftest import ROOT, SEED

from components.kindconfig import kind_config

POLICY = os.path.join(ROOT, "deploy", "audit-policy.yaml")
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
RULE_KEYS = {
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
}
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def base_config() -> dict:
    return load(os.path.join(ROOT, "deploy", "kind-config.yaml"))


@dataclass(frozen=True)
class Req:
    """The request attributes an audit policy sees."""

    user: str
    verb: str
    groups: tuple = ("system:authenticated",)
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str | None = None  # set for non-resource requests (/healthz, /api, ...)


def _url_matches(spec: str, path: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


def _resource_matches(selector: dict, req: Req) -> bool:
    if selector.get("group", "") != req.group:
        return False
    if not selector.get("resources"):
        return True
    if selector.get("resourceNames") and req.name not in selector["resourceNames"]:
        return False
    full = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    return any(
        r in ("*", full) or (req.subresource and r == f"*/{req.subresource}") or r == f"{req.resource}/*"
        for r in selector["resources"]
    )


def _rule_matches(rule: dict, req: Req) -> bool:
    if rule.get("users") and req.user not in rule["users"]:
        return False
    if rule.get("userGroups") and not set(req.groups) & set(rule["userGroups"]):
        return False
    if rule.get("verbs") and req.verb not in rule["verbs"]:
        return False
    if rule.get("namespaces") or rule.get("resources"):
        if req.path is not None:
            return False
        if rule.get("namespaces") and req.namespace not in rule["namespaces"]:
            return False
        return not rule.get("resources") or any(_resource_matches(s, req) for s in rule["resources"])
    if rule.get("nonResourceURLs"):
        return req.path is not None and any(_url_matches(spec, req.path) for spec in rule["nonResourceURLs"])
    return True


def audit_level(policy: dict, req: Req) -> str:
    return next((rule["level"] for rule in policy["rules"] if _rule_matches(rule, req)), "None")


def test_policy_is_an_audit_v1_policy_with_known_fields():
    policy = load(POLICY)
    assert (policy["apiVersion"], policy["kind"]) == ("audit.k8s.io/v1", "Policy")
    assert policy["omitStages"] == ["RequestReceived"]
    for i, rule in enumerate(policy["rules"]):
        assert set(rule) <= RULE_KEYS and rule["level"] in LEVELS, (i, rule)
        # The API server ignores nonResourceURLs on a rule that also selects resources.
        assert not (rule.get("nonResourceURLs") and (rule.get("resources") or rule.get("namespaces"))), (i, rule)
        assert all("*" not in url[:-1] for url in rule.get("nonResourceURLs", [])), (i, rule)
    # The last rule is the catch-all: nothing falls through unrecorded.
    assert policy["rules"][-1] == {"level": "Metadata"}


ALICE = {"user": "alice", "groups": ("system:masters", "system:authenticated")}
KUBELET = {"user": "system:node:b2b-platform-worker", "groups": ("system:nodes", "system:authenticated")}
CNPG = {
    "user": "system:serviceaccount:cnpg-system:cloudnative-pg",
    "groups": ("system:serviceaccounts", "system:serviceaccounts:cnpg-system", "system:authenticated"),
}
RS_CONTROLLER = {
    "user": "system:serviceaccount:kube-system:replicaset-controller",
    "groups": ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
}


@pytest.mark.parametrize(
    "req, level",
    [
        # Secrets and tokens: who and when, never the content; also in the platform's namespace.
        (Req(**ALICE, verb="get", resource="secrets", namespace="saas-net", name="platform-db-router"), "Metadata"),
        (Req(**ALICE, verb="patch", resource="secrets", namespace="saas-net"), "Metadata"),
        (Req(**ALICE, verb="create", resource="configmaps", namespace="kube-system"), "Metadata"),
        (Req(**CNPG, verb="create", group="authentication.k8s.io", resource="tokenreviews"), "Metadata"),
        (
            Req(**ALICE, verb="create", resource="serviceaccounts", subresource="token", namespace="saas-net"),
            "Metadata",
        ),
        # Changes in the platform's namespaces, with the request body.
        (
            Req(**ALICE, verb="patch", group="apps", resource="deployments", namespace="saas-net", name="tenant-api"),
            "Request",
        ),
        (
            Req(
                **CNPG,
                verb="update",
                group="postgresql.cnpg.io",
                resource="clusters",
                subresource="status",
                namespace="saas-net",
            ),
            "Request",
        ),
        (Req(**RS_CONTROLLER, verb="create", resource="pods", namespace="saas-net"), "Request"),
        (Req(**ALICE, verb="delete", group="apps", resource="deployments", namespace="keda"), "Request"),
        # Reads there, and changes elsewhere: metadata.
        (Req(**ALICE, verb="get", group="apps", resource="deployments", namespace="saas-net"), "Metadata"),
        (Req(**ALICE, verb="delete", group="apps", resource="deployments", namespace="default"), "Metadata"),
        (Req(**ALICE, verb="create", group="rbac.authorization.k8s.io", resource="clusterrolebindings"), "Metadata"),
        # Routine noise.
        (Req(**KUBELET, verb="watch", resource="pods"), "None"),
        (Req(**KUBELET, verb="get", resource="secrets", namespace="saas-net"), "None"),
        (Req(**KUBELET, verb="patch", resource="nodes", subresource="status", name="b2b-platform-worker"), "None"),
        (
            Req(**KUBELET, verb="update", group="coordination.k8s.io", resource="leases", namespace="kube-node-lease"),
            "None",
        ),
        (Req(**CNPG, verb="update", group="coordination.k8s.io", resource="leases", namespace="cnpg-system"), "None"),
        (Req(user="system:kube-proxy", verb="watch", group="discovery.k8s.io", resource="endpointslices"), "None"),
        (Req(**RS_CONTROLLER, verb="list", resource="pods"), "None"),
        (Req(user="system:kube-scheduler", verb="watch", resource="pods"), "None"),
        (Req(**CNPG, verb="create", resource="events", namespace="saas-net"), "None"),
        (Req(user="system:anonymous", groups=("system:unauthenticated",), verb="get", path="/readyz"), "None"),
        (Req(**ALICE, verb="get", path="/apis/apps/v1"), "None"),
        # A non-resource request outside the probe and discovery paths is still recorded.
        (Req(**ALICE, verb="get", path="/logs/"), "Metadata"),
    ],
)
def test_first_matching_rule_decides(req, level):
    assert audit_level(load(POLICY), req) == level


def test_the_noise_rules_never_hide_a_users_write():
    policy = load(POLICY)
    for verb in WRITES:
        for resource, group in (
            ("secrets", ""),
            ("deployments", "apps"),
            ("roles", "rbac.authorization.k8s.io"),
            ("clusters", "postgresql.cnpg.io"),
        ):
            assert (
                audit_level(policy, Req(**ALICE, verb=verb, group=group, resource=resource, namespace="saas-net"))
                != "None"
            ), (verb, resource)


def test_request_level_covers_exactly_the_namespaces_the_dev_stack_creates(seed_render):
    (rule,) = [r for r in load(POLICY)["rules"] if r["level"] == "Request"]
    assert set(rule["namespaces"]) == seed_render.names("Namespace")
    assert set(rule["verbs"]) == set(WRITES)


def control_plane(config: dict) -> dict:
    (node,) = [n for n in config["nodes"] if n["role"] == "control-plane"]
    return node


def cluster_patch(node: dict) -> dict:
    (patch,) = [
        p for p in map(yaml.safe_load, node.get("kubeadmConfigPatches", [])) if p["kind"] == "ClusterConfiguration"
    ]
    return patch


def test_api_server_flags_volumes_and_mount_fit_together():
    node = control_plane(base_config())
    patch = cluster_patch(node)
    # kind renders kubeadm v1beta3 for a v1.35 node: a patch naming v1beta4 would not match it,
    # and a v1beta4 name/value list would replace v1beta3's extraArgs map.
    assert "apiVersion" not in patch and isinstance(patch["apiServer"]["extraArgs"], dict)
    args = patch["apiServer"]["extraArgs"]
    assert {k for k in args if k.startswith("audit-")} == {
        "audit-policy-file",
        "audit-log-path",
        "audit-log-maxage",
        "audit-log-maxbackup",
        "audit-log-maxsize",
    }
    assert all(
        args[k].isdigit() and int(args[k]) > 0 for k in ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize")
    )
    volumes = {v["name"]: v for v in patch["apiServer"]["extraVolumes"]}
    # The policy: project file → node (kind extraMount) → API server pod (kubeadm extraVolume), read-only.
    policy_volume = volumes["audit-policy"]
    assert (
        policy_volume["mountPath"] == args["audit-policy-file"]
        and policy_volume["readOnly"] is True
        and policy_volume["pathType"] == "File"
    )
    (mount,) = [m for m in node["extraMounts"] if m["containerPath"] == policy_volume["hostPath"]]
    assert mount["hostPath"] == "deploy/audit-policy.yaml" and mount["readOnly"] is True
    assert os.path.isfile(os.path.join(ROOT, mount["hostPath"]))
    # The log: a writable node directory, the same path inside the pod.
    log_volume = volumes["audit-log"]
    assert log_volume["hostPath"] == log_volume["mountPath"] == posixpath.dirname(args["audit-log-path"])
    assert log_volume["readOnly"] is False and log_volume["pathType"] == "DirectoryOrCreate"
    # Workers get nothing: only the control plane runs an API server.
    assert not [
        n
        for n in base_config()["nodes"]
        if n["role"] == "worker" and ("kubeadmConfigPatches" in n or "extraMounts" in n)
    ]


def test_switch_on_keeps_the_config_and_anchors_the_mount_at_the_root():
    base = base_config()
    config = kind_config(base, audit=True, root="/src/b2b")
    assert control_plane(config)["extraMounts"][0]["hostPath"] == "/src/b2b/deploy/audit-policy.yaml"
    control_plane(config)["extraMounts"][0]["hostPath"] = "deploy/audit-policy.yaml"
    assert config == base


def test_switch_off_removes_every_audit_piece_and_nothing_else():
    base = base_config()
    config = kind_config(base, audit=False, root="/src/b2b")
    assert "audit" not in yaml.safe_dump(config)
    node = control_plane(config)
    assert "kubeadmConfigPatches" not in node and "extraMounts" not in node
    expected = [{k: v for k, v in n.items() if k not in ("kubeadmConfigPatches", "extraMounts")} for n in base["nodes"]]
    assert config["nodes"] == expected and {k: v for k, v in config.items() if k != "nodes"} == {
        k: v for k, v in base.items() if k != "nodes"
    }


def test_switch_off_keeps_other_api_server_settings():
    base = base_config()
    patch = cluster_patch(control_plane(base))
    patch["apiServer"]["extraArgs"]["v"] = "4"
    control_plane(base)["kubeadmConfigPatches"] = [
        yaml.safe_dump(patch),
        "kind: InitConfiguration\nnodeRegistration: {}\n",
    ]
    node = control_plane(kind_config(base, audit=False, root="/src"))
    assert [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]] == [
        {"kind": "ClusterConfiguration", "apiServer": {"extraArgs": {"v": "4"}}},
        {"kind": "InitConfiguration", "nodeRegistration": {}},
    ]


@pytest.mark.parametrize("audit", [True, False])
def test_cli_writes_the_config_make_up_hands_to_kind(tmp_path, audit):
    stack = tmp_path / "Pulumi.test.yaml"
    stack.write_text(yaml.safe_dump({"config": {"b2b-platform:audit": {"kubernetes": audit}}}))
    out = tmp_path / "kind.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "components", "kind-config", SEED, "--stack-config", str(stack), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load(out.read_text())
    assert written == kind_config(base_config(), audit=audit, root=ROOT)
    assert out.read_text().startswith("# Written by `python -m components kind-config` from deploy/kind-config.yaml")
    if audit:
        assert os.path.isfile(control_plane(written)["extraMounts"][0]["hostPath"])
        assert cluster_patch(control_plane(written)) == cluster_patch(control_plane(base_config()))
