"""The platform's invariants as pure functions over Kubernetes manifests.

`policy/__main__.py` wraps these in a Pulumi CrossGuard `PolicyPack` (importing that
module starts the analyzer server, so tests import this one instead). Every function
takes manifests as mappings in Kubernetes' camelCase (what Pulumi passes a policy as a
resource's inputs, and what `components.render.manifests` produces) and returns the
violations as messages, [] when compliant. Nothing here imports Pulumi or pydantic: the
pack's own virtualenv has only pulumi-policy.

Contracts with the program (set by the layers, constants in components/meta.py):
- `b2b-platform.io/tls: "false"` on an Ingress: its gateway said `tls: false`.
- `b2b-platform.io/ha: "true"` on a CNPG Cluster: its datastore said `ha: true`;
  `b2b-platform.io/resiliencia: zona-unica` there accepts host instead of zone anti-affinity.
- `b2b-platform.io/tenant: <id>` on any object (or pod template): must be a known tenant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components import meta
from components.flows import policy_types
from components.podsecurity import containers, pod_spec, pod_template_labels, restricted_violations

CNPG = "postgresql.cnpg.io/"
# Kinds whose deletion loses data: the database, its backups' store, the broker's streams, volumes.
STATEFUL_KINDS = {
    (CNPG, "Cluster"),
    (CNPG, "Database"),
    ("barmancloud.cnpg.io/", "ObjectStore"),
    ("jetstream.nats.io/", "Stream"),
    ("apps/", "StatefulSet"),
    ("", "PersistentVolumeClaim"),
}
SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PWD", "SECRET", "SECRETS", "TOKEN", "KEY", "APIKEY", "CREDENTIAL", "CREDENTIALS"}
)
# `TOKEN_FILE=/var/run/...`: the value names where the secret is, it is not the secret.
POINTER_WORDS = frozenset({"FILE", "PATH", "DIR", "NAME", "REF"})
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@", re.I)
_ENV_REF = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*\)$")


def _api_group(obj: Mapping[str, Any]) -> str:
    api = obj.get("apiVersion") or ""
    return api.rsplit("/", 1)[0] + "/" if "/" in api else ""


def _is(obj: Mapping[str, Any], group: str, kind: str) -> bool:
    return obj.get("kind") == kind and _api_group(obj) == group


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def describe(obj: Mapping[str, Any]) -> str:
    md = _meta(obj)
    where = f"{md['namespace']}/" if md.get("namespace") else ""
    return f"{obj.get('kind')} {where}{md.get('name')}"


# ---------------------------------------------------------------- resource validators


def pod_security(obj: Mapping[str, Any]) -> list[str]:
    """Every pod template passes Pod Security Standards `restricted`."""
    spec = pod_spec(obj)
    return [] if spec is None else [f"not restricted: {v}" for v in restricted_violations(spec)]


def service_exposure(obj: Mapping[str, Any], edge_namespace: str) -> list[str]:
    """NodePort/LoadBalancer/external IPs only for the edge controller's own Services."""
    if not _is(obj, "", "Service") or _meta(obj).get("namespace") == edge_namespace:
        return []
    spec = obj.get("spec") or {}
    bad = []
    if spec.get("type", "ClusterIP") in ("NodePort", "LoadBalancer"):
        bad.append(
            f"type {spec['type']} outside the edge controller namespace {edge_namespace!r}; use ClusterIP behind the "
            "Ingress"
        )
    if spec.get("externalIPs"):
        bad.append(f"externalIPs outside the edge controller namespace {edge_namespace!r}")
    return bad


def _covers(tls_host: str, host: str) -> bool:
    if tls_host.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == tls_host[2:]
    return tls_host == host


def ingress_tls(obj: Mapping[str, Any]) -> list[str]:
    """Every Ingress host is covered by a `spec.tls` entry, unless the gateway said `tls: false`."""
    if not _is(obj, "networking.k8s.io/", "Ingress"):
        return []
    flag = (_meta(obj).get("annotations") or {}).get(meta.TLS_ANNOTATION)
    if flag == "false":
        return []
    if flag not in (None, "true"):
        return [f"annotation {meta.TLS_ANNOTATION}={flag!r}: accepted values are 'true' and 'false'"]
    spec = obj.get("spec") or {}
    tls_hosts = [h for t in spec.get("tls") or [] for h in t.get("hosts") or []]
    bad = []
    for rule in spec.get("rules") or []:
        host = rule.get("host")
        if not host:
            bad.append("a rule without host serves every name over plain HTTP")
        elif not any(_covers(t, host) for t in tls_hosts):
            bad.append(
                f"host {host!r} has no TLS entry (set {meta.TLS_ANNOTATION}: 'false' only when the blueprint says "
                "tls: false)"
            )
    return bad


def secret_like_name(name: str) -> bool:
    words = [w.upper() for w in _WORDS.findall(name)]
    return bool(set(words) & SECRET_WORDS) and words[-1] not in POINTER_WORDS


def _literal_secret(name: str, value: Any) -> str | None:
    if not isinstance(value, str) or not value or _ENV_REF.match(value):
        return None
    if secret_like_name(name):
        return f"{name!r} holds a literal value; read it from a Secret (valueFrom.secretKeyRef)"
    m = _URL_CREDENTIALS.search(value)
    if m and not _ENV_REF.match(m.group(1)):
        return f"{name!r} holds a URL with an inline password; build it from Secret-backed env vars"
    return None


def plain_secrets(obj: Mapping[str, Any]) -> list[str]:
    """No credential as a literal env value or ConfigMap entry (heuristic on names and URLs)."""
    bad = []
    spec = pod_spec(obj)
    if spec is not None:
        for c in containers(spec):
            for env in c.get("env") or []:
                if "value" in env:
                    found = _literal_secret(env.get("name", ""), env.get("value"))
                    if found:
                        bad.append(f"container {c.get('name')}: env {found}")
    if _is(obj, "", "ConfigMap"):
        for key, value in (obj.get("data") or {}).items():
            found = _literal_secret(key, value)
            if found:
                bad.append(f"ConfigMap key {found}")
    return bad


def cnpg_ha(obj: Mapping[str, Any]) -> list[str]:
    """An HA CNPG Cluster runs ≥ 3 instances with required anti-affinity across zones."""
    if not _is(obj, CNPG, "Cluster"):
        return []
    annotations = _meta(obj).get("annotations") or {}
    spec = obj.get("spec") or {}
    instances = spec.get("instances", 1)
    if annotations.get(meta.HA_ANNOTATION) != "true" and not instances > 1:
        return []
    bad = []
    if instances < 3:
        bad.append(f"HA cluster has {instances} instance(s); needs at least 3 (a primary and a quorum of standbys)")
    affinity = spec.get("affinity") or {}
    single_zone = annotations.get(meta.RESILIENCE_ANNOTATION) == "zona-unica"
    want = meta.HOST_KEY if single_zone else meta.ZONE_KEY
    if affinity.get("enablePodAntiAffinity") is False:
        bad.append("HA cluster disables pod anti-affinity")
    if affinity.get("topologyKey", meta.HOST_KEY) != want:
        bad.append(
            f"HA cluster anti-affinity topologyKey is {affinity.get('topologyKey', meta.HOST_KEY)!r}; needs {want!r}"
        )
    if affinity.get("podAntiAffinityType", "preferred") != "required":
        bad.append(
            "HA cluster anti-affinity is 'preferred'; needs podAntiAffinityType 'required' so instances never share "
            "a failure domain"
        )
    return bad


def stateful_retained(
    obj: Mapping[str, Any], protected: bool, require_protect: bool, purged: Iterable[str] = ()
) -> list[str]:
    """Stateful objects survive a removal from the program: retain policies always, Pulumi `protect`
    when the stack asks. `purged`: layers (`app.kubernetes.io/component`) the stack purges on
    purpose, whose StatefulSets may delete their claims with them (docs/changing-a-running-platform.md).

    A policy never sees a delete (CrossGuard validates what is registered), so the guard is
    on what is registered: Kubernetes-side retain settings that make a delete keep the
    data, and Pulumi's `protect`, which makes `pulumi up` refuse the delete until someone
    unprotects it (the explicit purge).
    """
    if not any(_is(obj, g, k) for g, k in STATEFUL_KINDS):
        return []
    spec = obj.get("spec") or {}
    bad = []
    if _is(obj, CNPG, "Database") and spec.get("databaseReclaimPolicy", "retain") != "retain":
        bad.append("databaseReclaimPolicy must be 'retain': deleting the Database object must not drop the database")
    if _is(obj, "jetstream.nats.io/", "Stream") and spec.get("preventDelete") is not True:
        bad.append("preventDelete must be true: deleting the Stream object must not delete its messages")
    if _is(obj, "apps/", "StatefulSet") and spec.get("volumeClaimTemplates"):
        policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
        purging = (_meta(obj).get("labels") or {}).get(meta.LAYER_LABEL) in set(purged)
        for when in ("whenScaled",) if purging else ("whenDeleted", "whenScaled"):
            if policy.get(when, "Retain") != "Retain":
                bad.append(f"persistentVolumeClaimRetentionPolicy.{when} must be 'Retain'")
    stateless_sts = _is(obj, "apps/", "StatefulSet") and not spec.get("volumeClaimTemplates")
    if require_protect and not protected and not stateless_sts:
        bad.append("stateful resource without Pulumi `protect` (settings.protect); unprotect explicitly to purge")
    return bad


def known_tenant(obj: Mapping[str, Any], tenants: Iterable[str]) -> list[str]:
    """Objects (and pod templates) labelled with a tenant name a tenant of the stack."""
    known = set(tenants)
    found = []
    for where, labels in (
        ("metadata.labels", _meta(obj).get("labels") or {}),
        ("pod template labels", pod_template_labels(obj) or {}),
    ):
        tenant = labels.get(meta.TENANT_LABEL)
        if tenant is not None and tenant not in known:
            found.append(
                f"{where} {meta.TENANT_LABEL}={tenant!r} is not a known tenant "
                f"({', '.join(sorted(known)) or 'none configured'})"
            )
    return found


# ---------------------------------------------------------------- stack validators


def _selects_all(selector: Mapping[str, Any] | None) -> bool:
    return not (selector or {}).get("matchLabels") and not (selector or {}).get("matchExpressions")


def default_deny(
    objects: Sequence[Mapping[str, Any]], exempt: Iterable[str] = ()
) -> list[tuple[Mapping[str, Any], str]]:
    """Every Namespace in the stack has a NetworkPolicy denying all ingress and all egress."""
    exempt = set(exempt)
    policies: dict[str | None, list[Mapping[str, Any]]] = {}
    for o in objects:
        if _is(o, "networking.k8s.io/", "NetworkPolicy"):
            policies.setdefault(_meta(o).get("namespace"), []).append(o.get("spec") or {})
    bad = []
    for ns in (o for o in objects if _is(o, "", "Namespace")):
        name = _meta(ns).get("name")
        if name in exempt:
            continue
        for direction, rules in (("Ingress", "ingress"), ("Egress", "egress")):
            if not any(
                _selects_all(s.get("podSelector")) and direction in policy_types(s) and not s.get(rules)
                for s in policies.get(name, [])
            ):
                bad.append(
                    (
                        ns,
                        (
                            f"namespace {name!r} has no default-deny {direction.lower()} NetworkPolicy (podSelector "
                            f"{{}}, policyTypes [{direction}], no rules)"
                        ),
                    )
                )
    return bad


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class Check:
    """One policy: a name, what it enforces, its config (JSON-schema properties) and its validator.

    `validate(obj, config, protected)` for resource checks; `validate(objects, config)` for
    stack checks, returning (object, message) pairs.
    """

    name: str
    description: str
    validate: Callable[..., list]
    config: dict = field(default_factory=dict)
    stack: bool = False


CHECKS: tuple[Check, ...] = (
    Check(
        "pod-security-restricted",
        "Every pod template passes Pod Security Standards `restricted`.",
        lambda obj, cfg, protected: pod_security(obj),
    ),
    Check(
        "namespace-default-deny",
        "Every Namespace the stack creates has default-deny ingress and egress NetworkPolicies.",
        lambda objects, cfg: default_deny(objects, cfg.get("exemptNamespaces", ())),
        {"exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": []}},
        stack=True,
    ),
    Check(
        "no-exposed-services",
        "No NodePort/LoadBalancer Service (nor externalIPs) outside the edge controller namespace.",
        lambda obj, cfg, protected: service_exposure(obj, cfg.get("edgeNamespace", "traefik")),
        {"edgeNamespace": {"type": "string", "default": "traefik"}},
    ),
    Check(
        "ingress-tls",
        "Every Ingress host has TLS, unless annotated b2b-platform.io/tls: 'false' (blueprint tls: false).",
        lambda obj, cfg, protected: ingress_tls(obj),
    ),
    Check(
        "no-plaintext-secrets",
        "No credential as a literal env value or ConfigMap entry.",
        lambda obj, cfg, protected: plain_secrets(obj),
    ),
    Check(
        "cnpg-ha-spread",
        "An HA CloudNativePG Cluster has >= 3 instances and required zone anti-affinity.",
        lambda obj, cfg, protected: cnpg_ha(obj),
    ),
    Check(
        "stateful-data-retained",
        "Stateful resources keep their data when deleted (retain policies) and are Pulumi-protected when the stack "
        "asks.",
        lambda obj, cfg, protected: stateful_retained(
            obj, protected, cfg.get("requireProtect", True), cfg.get("purgedLayers", ())
        ),
        {
            "requireProtect": {"type": "boolean", "default": True},
            "purgedLayers": {"type": "array", "items": {"type": "string"}, "default": []},
        },
    ),
    Check(
        "known-tenant-ids",
        "Objects labelled b2b-platform.io/tenant carry a tenant id the stack declares.",
        lambda obj, cfg, protected: known_tenant(obj, cfg.get("tenants", ())),
        {"tenants": {"type": "array", "items": {"type": "string"}, "default": []}},
    ),
)


def violations(
    resources: Sequence[tuple[Mapping[str, Any], bool]], config: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Run every check over (manifest, protected) pairs as the pack would; {policy: ["Kind ns/name: message"]}."""
    found: dict[str, list[str]] = {}
    objects = [obj for obj, _ in resources]
    for check in CHECKS:
        cfg = config.get(check.name, {})
        if check.stack:
            messages = [f"{describe(obj)}: {msg}" for obj, msg in check.validate(objects, cfg)]
        else:
            messages = [
                f"{describe(obj)}: {msg}" for obj, protected in resources for msg in check.validate(obj, cfg, protected)
            ]
        if messages:
            found[check.name] = messages
    return found
