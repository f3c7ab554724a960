"""Strict schema validation of rendered objects (Pod Security: components/podsecurity.py).

Core kinds: kubernetes-validate's strict schemas for Kubernetes 1.35. Custom resources:
the upstream CRD schemas in tests/schemas (see SOURCES.md there), made strict the way
the API server's structural pruning would treat unknown fields: `additionalProperties:
false` wherever `properties` are listed, except under x-kubernetes-preserve-unknown-fields.
"""

from __future__ import annotations

import copy
import functools
import json
import os

import jsonschema
import kubernetes_validate

K8S_VERSION = "1.35.0"
SCHEMAS = os.path.join(os.path.dirname(__file__), "schemas")
CRDS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io/cluster_v1.json",
    ("postgresql.cnpg.io/v1", "Pooler"): "postgresql.cnpg.io/pooler_v1.json",
    ("postgresql.cnpg.io/v1", "Database"): "postgresql.cnpg.io/database_v1.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "postgresql.cnpg.io/scheduledbackup_v1.json",
    ("barmancloud.cnpg.io/v1", "ObjectStore"): "barmancloud.cnpg.io/objectstore_v1.json",
    ("cert-manager.io/v1", "Certificate"): "cert-manager.io/certificate_v1.json",
    ("cert-manager.io/v1", "Issuer"): "cert-manager.io/issuer_v1.json",
    ("cert-manager.io/v1", "ClusterIssuer"): "cert-manager.io/clusterissuer_v1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com/podmonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
    ("monitoring.coreos.com/v1", "Prometheus"): "monitoring.coreos.com/prometheus_v1.json",
    ("jetstream.nats.io/v1beta2", "Stream"): "jetstream.nats.io/stream_v1beta2.json",
    ("jetstream.nats.io/v1beta2", "Consumer"): "jetstream.nats.io/consumer_v1beta2.json",
    ("jetstream.nats.io/v1beta2", "Account"): "jetstream.nats.io/account_v1beta2.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
}
ROOT_KEYS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


def _strict(node):
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if "required" in out and "properties" in out:
        # The API server applies defaults before validating.
        out["required"] = [r for r in out["required"] if "default" not in out["properties"].get(r, {})]
    if out.get("pattern") == "^(?i)(abort|warn)?$":
        out["pattern"] = "(?i)^(abort|warn)?$"  # RE2 → Python re (SOURCES.md)
    return out


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft4Validator:
    with open(os.path.join(SCHEMAS, CRDS[(api_version, kind)]), encoding="utf-8") as fh:
        schema = _strict(json.load(fh))
    schema = copy.deepcopy(schema)
    schema.setdefault("properties", {}).update({k: v for k, v in ROOT_KEYS.items() if k not in schema["properties"]})
    schema["additionalProperties"] = False
    return jsonschema.Draft4Validator(schema)


def validate(obj: dict) -> list[str]:
    """Every schema error of one object ([] when valid)."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRDS:
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in crd_validator(*key).iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []
