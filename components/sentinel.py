"""Sentinel: a ModSecurity + OWASP Core Rule Set tier in front of one compute.

The edge controller sends the compute's traffic here (the pods are entry points); the WAF
forwards what passes to the compute's Service with the original Host header, and a
NetworkPolicy lets only the WAF pods reach the compute. `bloquear` runs the rule engine
On (blocks at the anomaly thresholds), `detectar` DetectionOnly (logs, never blocks).

The image renders its nginx and ModSecurity config at start-up into /etc/nginx,
/etc/modsecurity.d and /opt/owasp-crs. An init container copies those directories from
the image into emptyDirs, so the WAF itself runs with a read-only root filesystem.

With `audit.waf` on, ModSecurity writes one JSON audit record per relevant transaction
(rule matches, 5xx and 4xx other than 404) to stdout, where the cluster's log collector
picks it up; with it off the audit engine is Off (rule matches still reach nginx's error log).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import kube, meta
from .blueprint import Blueprint
from .blueprint import Sentinel as SentinelResource
from .contracts import HTTP_SERVICE_PORT, WafRef
from .settings import ComputeSettings, Settings

LAYER = "sentinel"
RULE_ENGINE = {"bloquear": "On", "detectar": "DetectionOnly"}
# The image's unprivileged listener and its own identity (nginxinc/nginx-unprivileged's `nginx` user).
WAF_PORT = 8080
WAF_UID = 101
# Directories the image writes to: (volume, path, seeded from the image, size limit). The
# entrypoint renders templates into /etc/nginx, copies ModSecurity config into
# /etc/modsecurity.d and edits crs-setup.conf under /opt/owasp-crs; nginx keeps request
# bodies under /var/cache/nginx and ModSecurity its data, uploads and temp files under /tmp.
WRITABLE = (
    ("etc-nginx", "/etc/nginx", True, "32Mi"),
    ("etc-modsecurity", "/etc/modsecurity.d", True, "16Mi"),
    ("owasp-crs", "/opt/owasp-crs", True, "64Mi"),
    ("tmp", "/tmp", False, "256Mi"),
    ("nginx-cache", "/var/cache/nginx", False, "256Mi"),
)
SEED_DIR = "/seed"
# What the image's Dockerfile creates under /tmp, which the emptyDir hides.
MODSEC_TMP_DIRS = ("modsecurity/data", "modsecurity/upload", "modsecurity/tmp")
RESOURCES = meta.resources("250m", "256Mi", "1", "512Mi")
# Which responses make a transaction worth auditing without any rule match: 5xx and 4xx
# other than 404 (the image's default, pinned so an image upgrade cannot change it).
AUDIT_RELEVANT_STATUS = "^(?:5|4(?!04))"


@dataclass(frozen=True)
class SentinelArgs:
    namespace: str
    name: str
    target: str
    # The workload the WAF forwards to: the target, or the login proxy in front of it.
    upstream: str
    upstream_selector: dict
    upstream_port: int
    backend: str
    replicas: int
    multi_zone: bool
    public: bool
    image: str
    rule_engine: str
    paranoia: int
    anomaly_inbound: int
    anomaly_outbound: int
    audit: bool
    audit_parts: str

    @classmethod
    def of(
        cls, resource: SentinelResource, bp: Blueprint, settings: Settings, waf: WafRef, public: bool
    ) -> SentinelArgs:
        target = bp.by_name(resource.config.alvo_recurso_id)
        tuning = settings.sentinel
        return cls(
            namespace=waf.namespace,
            name=waf.name,
            target=target.nome,
            upstream=waf.next_hop,
            upstream_selector=waf.via.selector if waf.via else meta.selector(target.nome),
            upstream_port=waf.via.port if waf.via else settings.computes.get(target.nome, ComputeSettings()).port,
            backend=waf.upstream,
            # The WAF sees every request the target does, so it is as wide as the target's floor.
            replicas=target.config.replicas_min,
            multi_zone=bp.multi_zone,
            public=public,
            image=settings.image("sentinel"),
            rule_engine=RULE_ENGINE[resource.config.modo],
            paranoia=tuning.paranoia,
            anomaly_inbound=tuning.anomaly_inbound,
            anomaly_outbound=tuning.anomaly_outbound,
            audit=settings.audit.waf,
            audit_parts=settings.audit.waf_log_parts,
        )


def pod_labels(args: SentinelArgs) -> dict:
    return meta.pod_labels(args.name, LAYER, args.public, {"b2b-platform.io/target": args.target})


def waf_env(args: SentinelArgs) -> list:
    """The image's own settings (README of coreruleset/modsecurity-crs-docker)."""
    return [
        {"name": "BACKEND", "value": args.backend},
        {"name": "PORT", "value": str(WAF_PORT)},
        {"name": "MODSEC_RULE_ENGINE", "value": args.rule_engine},
        {"name": "BLOCKING_PARANOIA", "value": str(args.paranoia)},
        {"name": "ANOMALY_INBOUND", "value": str(args.anomaly_inbound)},
        {"name": "ANOMALY_OUTBOUND", "value": str(args.anomaly_outbound)},
        # `auto` starts one worker per node CPU, each holding its own copy of the rules:
        # on a large node that alone exceeds the memory limit. Replicas scale it instead.
        {"name": "NGINX_WORKER_PROCESSES", "value": "1"},
        *audit_env(args),
    ]


def audit_env(args: SentinelArgs) -> list:
    """ModSecurity's audit log: serial JSON records on stdout (no file on the read-only root)."""
    if not args.audit:
        return [{"name": "MODSEC_AUDIT_ENGINE", "value": "Off"}]
    return [
        {"name": "MODSEC_AUDIT_ENGINE", "value": "RelevantOnly"},
        {"name": "MODSEC_AUDIT_LOG_RELEVANT_STATUS", "value": AUDIT_RELEVANT_STATUS},
        {"name": "MODSEC_AUDIT_LOG", "value": "/dev/stdout"},
        {"name": "MODSEC_AUDIT_LOG_FORMAT", "value": "JSON"},
        # Serial: one stream; Concurrent would write a file per record under the root filesystem.
        {"name": "MODSEC_AUDIT_LOG_TYPE", "value": "Serial"},
        {"name": "MODSEC_AUDIT_LOG_PARTS", "value": args.audit_parts},
    ]


def seed_command() -> list:
    copies = [f"cp -a {path}/. {SEED_DIR}/{volume}/" for volume, path, seeded, _ in WRITABLE if seeded]
    dirs = " ".join(f"{SEED_DIR}/tmp/{d}" for d in MODSEC_TMP_DIRS)
    return ["sh", "-c", "set -eu; " + "; ".join(copies) + f"; mkdir -p {dirs}"]


def seed_container(args: SentinelArgs) -> dict:
    mounts = [{"name": volume, "mountPath": f"{SEED_DIR}/{volume}"} for volume, _, seeded, _ in WRITABLE if seeded]
    return {
        "name": "seed-config",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "command": seed_command(),
        "resources": meta.resources("50m", "32Mi", "200m", "64Mi"),
        "securityContext": meta.container_security_context(),
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": f"{SEED_DIR}/tmp"}],
    }


def waf_container(args: SentinelArgs) -> dict:
    return {
        "name": "modsecurity",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "ports": [{"name": "http", "containerPort": WAF_PORT, "protocol": "TCP"}],
        "env": waf_env(args),
        "resources": RESOURCES,
        "securityContext": meta.container_security_context(),
        # /healthz is answered by nginx itself, so a slow backend never restarts the WAF.
        "startupProbe": meta.http_probe("/healthz", "http", period=2, failures=60),
        "readinessProbe": meta.http_probe("/healthz", "http", period=5, failures=3),
        "livenessProbe": meta.http_probe("/healthz", "http", period=10, failures=6),
        "volumeMounts": [{"name": volume, "mountPath": path} for volume, path, _, _ in WRITABLE],
    }


def deployment_spec(args: SentinelArgs) -> dict:
    pod = {
        "securityContext": meta.pod_security_context(WAF_UID),
        "initContainers": [seed_container(args)],
        "containers": [waf_container(args)],
        "volumes": [{"name": volume, "emptyDir": {"sizeLimit": size}} for volume, _, _, size in WRITABLE],
    }
    return meta.deployment_spec(args.name, pod_labels(args), args.multi_zone, pod, args.replicas)


def service_spec(args: SentinelArgs) -> dict:
    return meta.http_service_spec(args.name, HTTP_SERVICE_PORT)


def policy_name(args: SentinelArgs) -> str:
    return f"allow-{args.name}-to-{args.upstream}"


def target_policy_spec(args: SentinelArgs) -> dict:
    """Only the WAF pods reach what it protects (the compute, or its login proxy), on its serving port."""
    return meta.allow_ingress(
        args.upstream_selector, [meta.pod_peer(meta.selector(args.name))], meta.tcp_ports(args.upstream_port)
    )


class Sentinel(pulumi.ComponentResource):
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    backend: str
    rule_engine: str

    def __init__(self, name: str, args: SentinelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:sentinel:Sentinel", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        md = meta.metadata(args.name, args.namespace, LAYER, {"b2b-platform.io/target": args.target})
        deployment, service = kube.http_tier(name, md, deployment_spec(args), service_spec(args), child)
        kube.Object(
            f"{name}-policy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            metadata={**md, "name": policy_name(args)},
            spec=target_policy_spec(args),
            opts=child,
        )
        self.deployment_name = deployment.metadata["name"]
        self.service_name = service.metadata["name"]
        self.backend = args.backend
        self.rule_engine = args.rule_engine
        self.register_outputs(
            {
                "deployment_name": self.deployment_name,
                "service_name": self.service_name,
                "backend": self.backend,
                "rule_engine": self.rule_engine,
            }
        )
