"""Autoscale: one autoscaler per target compute, never two.

`cpu`/`memory` → HPA (autoscaling/v2, Resource metric at `limiar` % utilisation).
`requests` → KEDA ScaledObject with a Prometheus trigger (`limiar` requests/s per
replica); KEDA owns the HPA it creates, so the platform declares no HPA of its own there.
Both scale up at once and down slowly: tenant bursts arrive fast and leave in waves.
Upstream (kedacore/keda v2.20.2): pkg/scalers/prometheus_scaler.go `ignoreNullValues` defaults
to true; apis/keda/v1alpha1/scaledobject_types.go CheckFallbackValid accepts a fallback only
with a non-CPU/memory trigger, and the fallback behaviours are static/currentReplicas*.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import kube, meta
from .blueprint import Autoscale as AutoscaleResource
from .blueprint import Blueprint
from .settings import Settings

LAYER = "autoscale"
# Failed metric reads (one per pollingInterval) before KEDA applies the fallback.
FALLBACK_FAILURES = 3


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


def target_ref(deployment: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}


def resource_hpa_spec(target: str, min_replicas: int, max_replicas: int, resource: str, utilization: int) -> dict:
    """An HPA on a Deployment's CPU or memory utilisation, with the platform's behaviour."""
    return {
        "scaleTargetRef": target_ref(target),
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": utilization}},
            }
        ],
        "behavior": behavior(),
    }


def hpa_spec(args: AutoscaleArgs) -> dict:
    return resource_hpa_spec(args.target, args.min_replicas, args.max_replicas, args.metric, args.threshold)


def fallback(args: AutoscaleArgs) -> dict:
    """What KEDA holds the target at after FALLBACK_FAILURES failed reads: half-way up, or more if already there."""
    return {
        "failureThreshold": FALLBACK_FAILURES,
        "replicas": max(args.min_replicas, -(-args.max_replicas // 2)),
        "behavior": "currentReplicasIfHigher",
    }


def scaled_object_spec(args: AutoscaleArgs) -> dict:
    return {
        "scaleTargetRef": target_ref(args.target),
        "minReplicaCount": args.min_replicas,
        "maxReplicaCount": args.max_replicas,
        "pollingInterval": 15,
        "cooldownPeriod": 300,
        "advanced": {"horizontalPodAutoscalerConfig": {"name": args.name, "behavior": behavior()}},
        "fallback": fallback(args),
        "triggers": [
            {
                "type": "prometheus",
                # Fallback needs an AverageValue target (CheckFallbackValid).
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": args.prometheus_url,
                    "query": args.query,
                    "threshold": str(args.threshold),
                    # KEDA's default (true) reads an empty result, a lost scrape, as 0 requests/s
                    # and scales the API to its floor; false makes it an error, hence the fallback.
                    "ignoreNullValues": "false",
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
        scaler: pulumi.CustomResource
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
            scaler = kube.Object(
                f"{name}-hpa", "autoscaling/v2", "HorizontalPodAutoscaler", metadata=md, spec=hpa_spec(args), opts=child
            )
            self.kind = "HorizontalPodAutoscaler"
        self.object_name = kube.name_of(scaler)
        self.register_outputs({"kind": self.kind, "object_name": self.object_name})
