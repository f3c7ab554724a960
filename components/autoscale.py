"""Autoscale: one autoscaler per target compute, never two.

`cpu`/`memory` → HPA (autoscaling/v2, Resource metric at `limiar` % utilisation).
`requests` → KEDA ScaledObject with a Prometheus trigger (`limiar` requests/s per
replica); KEDA owns the HPA it creates, so the platform declares no HPA of its own there.
Both scale up at once and down slowly: tenant bursts arrive fast and leave in waves.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import meta
from .blueprint import Autoscale as AutoscaleResource
from .blueprint import Blueprint
from .settings import Settings

LAYER = "autoscale"


@dataclass(frozen=True)
class AutoscaleArgs:
    namespace: str
    name: str
    target: str
    metric: str
    threshold: int
    min_replicas: int
    max_replicas: int
    prometheus_url: str | None
    query: str | None
    # Resources that must exist before the ScaledObject (KEDA's release and CRDs), when the stack installs add-ons.
    requires: tuple = ()

    @classmethod
    def of(
        cls,
        resource: AutoscaleResource,
        bp: Blueprint,
        settings: Settings,
        namespace: str,
        prometheus_url: str | None,
        requires: tuple = (),
    ) -> AutoscaleArgs:
        target = bp.by_name(resource.config.alvo_recurso_id)
        requests = resource.config.metrica == "requests"
        return cls(
            namespace=namespace,
            name=resource.nome,
            target=target.nome,
            metric=resource.config.metrica,
            threshold=resource.config.limiar,
            min_replicas=target.config.replicas_min,
            max_replicas=target.config.max_replicas,
            prometheus_url=(settings.autoscale.prometheus_url or prometheus_url) if requests else None,
            query=settings.autoscale.requests_query.format(namespace=namespace, service=target.nome)
            if requests
            else None,
            requires=tuple(requires),
        )


def behavior() -> dict:
    """Double (or +4 pods) every 15 s on the way up; shed 10 %/min after 5 calm minutes."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 15},
                {"type": "Pods", "value": 4, "periodSeconds": 15},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 300,
            "selectPolicy": "Min",
            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
        },
    }


def target_ref(args: AutoscaleArgs) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": args.target}


def hpa_spec(args: AutoscaleArgs) -> dict:
    return {
        "scaleTargetRef": target_ref(args),
        "minReplicas": args.min_replicas,
        "maxReplicas": args.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": args.metric,
                    "target": {"type": "Utilization", "averageUtilization": args.threshold},
                },
            }
        ],
        "behavior": behavior(),
    }


def scaled_object_spec(args: AutoscaleArgs) -> dict:
    return {
        "scaleTargetRef": target_ref(args),
        "minReplicaCount": args.min_replicas,
        "maxReplicaCount": args.max_replicas,
        "pollingInterval": 15,
        "cooldownPeriod": 300,
        "advanced": {"horizontalPodAutoscalerConfig": {"name": args.name, "behavior": behavior()}},
        "triggers": [
            {
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": args.prometheus_url,
                    "query": args.query,
                    "threshold": str(args.threshold),
                },
            }
        ],
    }


class Autoscale(pulumi.ComponentResource):
    kind: str
    object_name: pulumi.Output[str]

    def __init__(self, name: str, args: AutoscaleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:autoscale:Autoscale", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        md = meta.metadata(args.name, args.namespace, LAYER, {"b2b-platform.io/target": args.target})
        if args.metric == "requests":
            scaler = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=md,
                spec=scaled_object_spec(args),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.requires)),
            )
            self.kind = "ScaledObject"
        else:
            scaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=md, spec=hpa_spec(args), opts=child
            )
            self.kind = "HorizontalPodAutoscaler"
        self.object_name = scaler.metadata["name"] if self.kind == "ScaledObject" else scaler.metadata.name
        self.register_outputs({"kind": self.kind, "object_name": self.object_name})
