"""Pure builders shared by every layer: labels, names, pod security, spreading.

Everything returns plain dicts in Kubernetes' own camelCase, so a builder's output reads
like the manifest it becomes and can be tested without Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping

PART_OF = "b2b-platform"
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
# Pods the edge controller may reach (Fabric's `publica` policy selects on this).
ENTRYPOINT_LABEL = "b2b-platform.io/entrypoint"
TENANT_LABEL = "b2b-platform.io/tenant"
# The one `tenant` label value that is no tenant (tenant ids are DNS labels, which have no `_`):
# apps bucket unknown tenants under it, the WAF its requests for hosts no tenant owns.
OTHER_TENANT = "_other"
# Contracts read by the policy pack (policy/validators.py), set by the layer that knows:
# the Gateway and a public Archive put TLS_ANNOTATION "false" on an Ingress whose blueprint
# gateway says `tls: false` (ingress_metadata);
# the Datastore puts HA_ANNOTATION "true" on a CNPG Cluster whose datastore says `ha: true`
# and RESILIENCE_ANNOTATION (the blueprint's `resiliencia`) on it, so a single-zone HA
# cluster is held to host anti-affinity instead of zone anti-affinity.
TLS_ANNOTATION = "b2b-platform.io/tls"
HA_ANNOTATION = "b2b-platform.io/ha"
RESILIENCE_ANNOTATION = "b2b-platform.io/resiliencia"


def ingress_metadata(metadata: dict, tls: bool) -> dict:
    """An Ingress's metadata; one served without TLS says so (TLS_ANNOTATION), for the policy pack."""
    if tls:
        return metadata
    return {**metadata, "annotations": {**metadata.get("annotations", {}), TLS_ANNOTATION: "false"}}


LAYER_LABEL = "app.kubernetes.io/component"
NAME_LABEL = "app.kubernetes.io/name"
# Non-root identity used by every pod the platform builds itself.
RUN_AS = 65532
# Every container: the kubelet re-checks registry credentials at each pod start, so a pod never
# runs a private image another namespace pulled onto the node (multi-tenancy; checkov CKV_K8S_15).
IMAGE_PULL_POLICY = "Always"


def selector(name: str) -> dict:
    """The labels that select a workload's pods; a subset of `labels(name, ...)`."""
    return {NAME_LABEL: name, "app.kubernetes.io/part-of": PART_OF}


def labels(name: str, layer: str, extra: Mapping[str, str] | None = None) -> dict:
    return {**selector(name), LAYER_LABEL: layer, "app.kubernetes.io/managed-by": "pulumi", **(extra or {})}


def pod_labels(name: str, layer: str, public: bool, extra: Mapping[str, str] | None = None) -> dict:
    """A workload's pod labels; `public` makes it an edge entry point (Fabric's allow-edge policy)."""
    return labels(name, layer, {**(extra or {}), **({ENTRYPOINT_LABEL: "true"} if public else {})})


def metadata(
    name: str,
    namespace: str | None,
    layer: str,
    extra_labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    meta = {"name": name, "labels": labels(name, layer, extra_labels)}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def pod_security_context(run_as: int = RUN_AS) -> dict:
    """Pod Security Standards `restricted` at pod level."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as,
        "runAsGroup": run_as,
        "fsGroup": run_as,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool = True) -> dict:
    """Pod Security Standards `restricted` at container level."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_request: str, memory_request: str, cpu_limit: str, memory_limit: str) -> dict:
    return {
        "requests": {"cpu": cpu_request, "memory": memory_request},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


MEMORY_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity in the forms the stack settings use ('512Mi', '2Gi', '1G', '1048576')."""
    number = quantity.rstrip("kMGTi")
    unit = quantity[len(number) :]
    if not number.isdigit() or unit not in MEMORY_UNITS:
        raise ValueError(f"{quantity!r} is not a memory quantity like '512Mi', '2Gi' or '1G'")
    return int(number) * MEMORY_UNITS[unit]


def go_memory_limit(limit: str) -> dict:
    """GOMEMLIMIT at 80 % of the container's limit, so the Go GC works hard before the kernel OOM-kills.

    The variable's own units (MiB); a resourceFieldRef would give the whole limit in bytes.
    """
    return {"name": "GOMEMLIMIT", "value": f"{memory_bytes(limit) * 8 // 10 // 1024**2}MiB"}


# Set by the Deployment controller on every pod of one ReplicaSet (one rollout revision).
POD_TEMPLATE_HASH = "pod-template-hash"


def spread_constraints(match: Mapping[str, str], multi_zone: bool, rollout_key: str | None = POD_TEMPLATE_HASH) -> list:
    """Hard spread across zones under multi-zona; soft spread across nodes always.

    `nodeTaintsPolicy: Honor`: nodes carrying a taint the pod does not tolerate leave the skew
    count. Under the default (Ignore) a zone whose nodes are all unreachable or drained
    (node.kubernetes.io/unreachable, .../unschedulable: NoSchedule) still counts as a domain
    with zero pods, so maxSkew 1 pins every other zone and new pods stay Pending for the
    whole outage (Kubernetes API reference, TopologySpreadConstraint v1 core).
    `matchLabelKeys: [pod-template-hash]` counts only pods of the same ReplicaSet, so a rollout
    spreads the new pods by themselves instead of around the old ones it is about to remove.
    StatefulSets (rollout_key None) have no such label and replace pods in place.
    """

    def constraint(key: str, when: str) -> dict:
        c = {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": dict(match)},
            "nodeTaintsPolicy": "Honor",
        }
        if rollout_key:
            c["matchLabelKeys"] = [rollout_key]
        return c

    nodes = constraint(HOST_KEY, "ScheduleAnyway")
    return [constraint(ZONE_KEY, "DoNotSchedule"), nodes] if multi_zone else [nodes]


def pdb_spec(match: Mapping[str, str]) -> dict:
    """At most one pod of a workload voluntarily down at a time, whatever its replica count."""
    return {"maxUnavailable": 1, "selector": {"matchLabels": dict(match)}}


def deployment_spec(
    name: str, pod_labels: Mapping[str, str], multi_zone: bool, pod: Mapping, replicas: int | None
) -> dict:
    """A stateless HTTP tier's Deployment: own ServiceAccount without a token, restricted,
    spread, and rollouts that never drop capacity. `pod` adds containers and volumes (and
    may override the pod securityContext); `replicas` None leaves the count to an autoscaler."""
    spec = {
        "selector": {"matchLabels": selector(name)},
        # maxUnavailable 0: a rollout adds a pod before it removes one, so capacity never drops.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "revisionHistoryLimit": 5,
        "template": {
            "metadata": {"labels": dict(pod_labels)},
            "spec": {
                "serviceAccountName": name,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security_context(),
                "topologySpreadConstraints": spread_constraints(selector(name), multi_zone),
                "terminationGracePeriodSeconds": 30,
                **pod,
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return spec


def service_ports(ports: Mapping[str, int]) -> list:
    """Service ports by name, each to the pods' container port of the same name."""
    return [
        {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
        for port_name, port in ports.items()
    ]


def service_spec(name: str, ports: Mapping[str, int]) -> dict:
    """ClusterIP Service over the pods of `name` (see `service_ports`)."""
    return {"type": "ClusterIP", "selector": selector(name), "ports": service_ports(ports)}


def http_service_spec(name: str, port: int = 80) -> dict:
    """ClusterIP Service on `port` → the pods' port named `http`."""
    return service_spec(name, {"http": port})


def http_probe(path: str, port: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def secret_env(name: str, secret: str, key: str) -> dict:
    """An env var read from a Secret: the only way the platform hands credentials to pods."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


# Kubernetes' default cluster DNS domain; the stack setting `clusterDomain` overrides it.
CLUSTER_DOMAIN = "cluster.local"


def service_host(service: str, namespace: str, domain: str = CLUSTER_DOMAIN) -> str:
    return f"{service}.{namespace}.svc.{domain}"


def pod_peer(match: Mapping[str, str]) -> dict:
    """A NetworkPolicy peer: pods in the policy's own namespace."""
    return {"podSelector": {"matchLabels": dict(match)}}


def namespace_peer(namespace: str, match: Mapping[str, str] | None = None) -> dict:
    """A NetworkPolicy peer: pods (all, or those matching) in another namespace."""
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    if match:
        peer["podSelector"] = {"matchLabels": dict(match)}
    return peer


def tcp_ports(*ports) -> list:
    return [{"protocol": "TCP", "port": p} for p in ports]


def allow_ingress(target: Mapping[str, str], peers: list, ports: list) -> dict:
    """NetworkPolicy spec: only `peers` may reach the `target` pods, and only on `ports`."""
    return {
        "podSelector": {"matchLabels": dict(target)},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": list(peers), "ports": list(ports)}],
    }


# The Kubernetes API server as pods reach it after kube-proxy's DNAT: 6443 on kind (kubeadm),
# 443 on most managed clusters.
API_SERVER_PORTS = (443, 6443)
# Container port names an entry point serves the edge on: the HTTP tiers' `http`, the archive's `s3`.
ENTRY_PORT_NAMES = ("http", "s3")


def api_server_egress(source: Mapping[str, str], api_server_cidr: str | None) -> dict:
    """NetworkPolicy spec: the `source` pods may reach the API server, at `api_server_cidr` when known.

    Unknown (stack setting `apiServerCidr` unset), the ports are opened to any address: the
    endpoint is a node or cloud address NetworkPolicy cannot otherwise name (the program warns).
    """
    rule: dict = {"ports": tcp_ports(*API_SERVER_PORTS)}
    if api_server_cidr:
        rule = {"to": [{"ipBlock": {"cidr": api_server_cidr}}], **rule}
    return {"podSelector": {"matchLabels": dict(source)}, "policyTypes": ["Egress"], "egress": [rule]}


def allow_egress(source: Mapping[str, str], peers: list, ports: list) -> dict:
    """NetworkPolicy spec: the `source` pods may open connections to `peers` on `ports`."""
    return {
        "podSelector": {"matchLabels": dict(source)},
        "policyTypes": ["Egress"],
        "egress": [{"to": list(peers), "ports": list(ports)}],
    }
