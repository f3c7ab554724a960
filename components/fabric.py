"""Fabric: the private network a blueprint runs in.

One namespace enforcing Pod Security `restricted`, default-deny in both directions, and
only the flows every workload needs: DNS, egress to pods of the fabric, the computes' egress
to the fabric's private `cidr`, and (when `publica`) the edge controller to the entry points'
entry ports.
Ingress to each workload is opened by the layer that needs the flow (the Datastore lets
the computes in, the Sentinel lets the edge in, ...), so intra-fabric traffic is allowed
on the sending side only and every receiver still chooses who reaches it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi

from . import kube, meta
from .blueprint import Blueprint
from .blueprint import Fabric as FabricResource
from .settings import PURGEABLE, QuotaSettings, Settings

LAYER = "fabric"


@dataclass(frozen=True)
class FabricArgs:
    namespace: str
    cidr: str
    public: bool
    edge_namespace: str
    quota: QuotaSettings
    # The API server's range (stack setting apiServerCidr): carved out of `cidr` when inside it.
    api_server_cidr: str | None = None
    # A stateful layer of the blueprint keeps its data in this namespace and is not purged.
    holds_data: bool = True

    @classmethod
    def of(cls, resource: FabricResource, settings: Settings, bp: Blueprint) -> FabricArgs:
        return cls(
            resource.nome,
            resource.config.cidr,
            resource.config.publica,
            settings.edge.controller_namespace,
            settings.quota,
            settings.api_server_cidr,
            holds_data=any(bp.of(layer) and not getattr(settings, layer).purge for layer in PURGEABLE),
        )


def namespace_labels() -> dict:
    """Pod Security Admission: enforce, audit and warn at `restricted`."""
    return {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")} | {
        f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")
    }


def policy_specs(args: FabricArgs) -> dict[str, dict]:
    """NetworkPolicy specs by role; every one of them is what the namespace permits at most."""
    specs: dict[str, dict] = {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [meta.namespace_peer("kube-system", {"k8s-app": "kube-dns"})],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
        "allow-fabric-egress": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {}}]}],
        },
        # The blueprint's `cidr` is the fabric's private network. Its pods are reached by
        # selector (above); the range stands for the private hosts beside the cluster (a VPC's
        # services), which only the application tier calls: every other layer's destinations
        # are named. docs/network.md.
        "allow-private-network": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": meta.PART_OF, meta.LAYER_LABEL: "compute"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": private_network_block(args)}]}],
        },
    }
    if args.public:
        # Entry ports only, resolved on each entry point (a public archive's SeaweedFS also
        # listens on its master, volume and filer ports, which must stay closed).
        specs["allow-edge"] = {
            "podSelector": {"matchLabels": {meta.ENTRYPOINT_LABEL: "true"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [meta.namespace_peer(args.edge_namespace)],
                    "ports": [{"protocol": "TCP", "port": name} for name in meta.ENTRY_PORT_NAMES],
                }
            ],
        }
    return specs


def private_network_block(args: FabricArgs) -> dict:
    """The fabric's `cidr` as an ipBlock, without the API server's range when that lies inside it."""
    block: dict = {"cidr": args.cidr}
    if args.api_server_cidr:
        network, api = ipaddress.ip_network(args.cidr), ipaddress.ip_network(args.api_server_cidr)
        if api.version == network.version and api.subnet_of(network):  # type: ignore[arg-type]  # same IP family, checked first
            block["except"] = [args.api_server_cidr]
    return block


def quota_spec(quota: QuotaSettings) -> dict:
    # NodePort and LoadBalancer Services are the edge controller's alone: zero here.
    return {
        "hard": {
            "requests.cpu": quota.requests_cpu,
            "requests.memory": quota.requests_memory,
            "limits.cpu": quota.limits_cpu,
            "limits.memory": quota.limits_memory,
            "pods": str(quota.pods),
            "requests.storage": quota.requests_storage,
            "persistentvolumeclaims": str(quota.persistent_volume_claims),
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }
    }


def limit_range_spec() -> dict:
    # Defaults let operator-made pods without resources still be admitted under the quota.
    return {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "500m", "memory": "512Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                "max": {"cpu": "8", "memory": "32Gi"},
            }
        ]
    }


class Fabric(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    policies: list[str]

    def __init__(self, name: str, args: FabricArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:fabric:Fabric", name, None, opts)
        ns = kube.Object(
            f"{name}-namespace",
            "v1",
            "Namespace",
            metadata={"name": args.namespace, "labels": meta.labels(args.namespace, LAYER, namespace_labels())},
            # Deleting the namespace deletes everything in it, retained Clusters and PVCs included: a
            # renamed or removed fabric leaves it in the cluster while a layer keeps data there.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.holds_data),
        )
        self.namespace = ns.metadata.apply(lambda m: m["name"])
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        self.policies = []
        for role, spec in policy_specs(args).items():
            kube.Object(
                f"{name}-{role}",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                metadata=meta.metadata(role, args.namespace, LAYER),
                spec=spec,
                opts=in_ns,
            )
            self.policies.append(role)
        kube.Object(
            f"{name}-quota",
            "v1",
            "ResourceQuota",
            metadata=meta.metadata("fabric-quota", args.namespace, LAYER),
            spec=quota_spec(args.quota),
            opts=in_ns,
        )
        kube.Object(
            f"{name}-limits",
            "v1",
            "LimitRange",
            metadata=meta.metadata("fabric-limits", args.namespace, LAYER),
            spec=limit_range_spec(),
            opts=in_ns,
        )
        self.register_outputs({"namespace": self.namespace, "policies": self.policies})
