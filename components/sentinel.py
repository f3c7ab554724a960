"""Sentinel: a ModSecurity + OWASP Core Rule Set tier in front of one compute.

The edge controller sends the compute's traffic here (the pods are entry points); the WAF
forwards what passes to the compute's Service with the original Host header, and a
NetworkPolicy lets only the WAF pods reach the compute. `bloquear` runs the rule engine
On (blocks at the anomaly thresholds), `detectar` DetectionOnly (logs, never blocks).

The image renders its nginx and ModSecurity config at start-up into /etc/nginx,
/etc/modsecurity.d and /opt/owasp-crs. An init container copies those directories from
the image into emptyDirs, so the WAF itself runs with a read-only root filesystem, and puts
the platform's own server and ModSecurity override (components/wafconfig.py, from a
ConfigMap) in place of the image's templates.

In front of the api compute the WAF also resolves tenants (wafconfig.TenantEdge): Host →
tenant id in a header the client cannot set, 404 for hosts no tenant owns, per-tenant rate
limits by plan. The map is data in the ConfigMap, so a tenant adds no resource; a change rolls
the pods, which drain before they stop (DRAIN_SECONDS).

When an autoscaler targets the compute the WAF protects, the WAF gets its own CPU HPA: it
sees every request its target does, so it starts at the target's floor and may grow to the
target's ceiling (or `sentinel.maxReplicas`).

With `audit.waf` on, ModSecurity writes one JSON audit record per relevant transaction
(rule matches, 5xx and 4xx other than 404) to stdout, where the cluster's log collector
picks it up; with it off the audit engine is Off (rule matches still reach nginx's error log).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi

from . import kube, meta, wafconfig
from .autoscale import resource_hpa_spec
from .blueprint import Blueprint
from .blueprint import Sentinel as SentinelResource
from .contracts import HTTP_SERVICE_PORT, Refs, WafRef
from .problems import Problem
from .settings import ComputeSettings, Settings
from .wafconfig import PodLimit, TenantEdge, WafConfig

LAYER = "sentinel"
RULE_ENGINE = {"bloquear": "On", "detectar": "DetectionOnly"}
# The image's unprivileged listener and its own identity (nginxinc/nginx-unprivileged's `nginx` user).
WAF_PORT = wafconfig.PORT
WAF_UID = 101
METRICS_PORT_NAME = "metrics"
# Directories the image writes to: (volume, path, seeded from the image, size limit). The
# entrypoint renders templates into /etc/nginx, copies ModSecurity config into
# /etc/modsecurity.d and edits crs-setup.conf under /opt/owasp-crs; nginx keeps request
# bodies under /var/cache/nginx and ModSecurity its data, uploads and temp files under /tmp.
WRITABLE = (
    ("etc-nginx", "/etc/nginx", True, "32Mi"),
    ("etc-modsecurity", "/etc/modsecurity.d", True, "16Mi"),
    ("owasp-crs", "/opt/owasp-crs", True, "64Mi"),
    # ModSecurity also writes multipart file parts here (SecTmpSaveUploadedFiles on): sized like the body volume.
    ("tmp", "/tmp", False, None),
)
# Request bodies: sized by the WAF's body limits (WafConfig.body_temp_size).
BODY_VOLUME = "nginx-cache"
CONFIG_VOLUME = "waf-config"
# ConfigMap key → the image template it replaces (paths inside /etc/nginx).
CONFIG_FILES = {
    "default.conf.template": "templates/conf.d/default.conf.template",
    "modsecurity-override.conf.template": "templates/modsecurity.d/modsecurity-override.conf.template",
}
# ConfigMap key → where it goes (inside /etc/nginx), for a WAF that resolves tenants: its
# per-tenant counters (wafconfig.edge_metrics) and their njs module, which nginx.conf must load.
EDGE_FILES = {
    "b2b-edge-metrics.conf.template": "templates/conf.d/b2b-edge-metrics.conf.template",
    "b2b_edge.js": wafconfig.EDGE_JS.removeprefix("/etc/nginx/"),
}
NGINX_CONF_TEMPLATE = "templates/nginx.conf.template"
SEED_DIR = "/seed"
# What the image's Dockerfile creates under /tmp, which the emptyDir hides.
MODSEC_TMP_DIRS = ("modsecurity/data", "modsecurity/upload", "modsecurity/tmp")
RESOURCES = meta.resources("250m", "256Mi", "1", "512Mi")
# A stopping pod leaves the Service's endpoints while the kubelet runs preStop; the edge
# controller keeps sending it requests until it sees that. nginx closes its listener on the
# stop signal, so it waits this long first. The image's STOPSIGNAL is SIGQUIT (nginxinc/
# docker-nginx-unprivileged mainline/debian/Dockerfile, inherited: modsecurity-crs-docker's
# nginx/Dockerfile sets none): nginx's graceful shutdown, which finishes requests in flight
# within the rest of terminationGracePeriodSeconds (30 s).
DRAIN_SECONDS = 5
# Kubernetes refuses a ConfigMap whose values total more than 1 MiB (kubernetes
# pkg/apis/core/validation/validation.go ValidateConfigMap: `totalSize > core.MaxSecretSize`).
MAX_CONFIG_BYTES = 1024 * 1024
# Which responses make a transaction worth auditing without any rule match: 5xx and 4xx
# other than 404 (the image's default, pinned so an image upgrade cannot change it).
AUDIT_RELEVANT_STATUS = "^(?:5|4(?!04))"


def resolves_tenants(bp: Blueprint, target: str) -> bool:
    """A WAF resolves tenants when it fronts the api compute the gateway sends tenant hosts to."""
    return bp.one("gateway") is not None and bp.api_compute.nome == target


def tenant_wafs(bp: Blueprint, refs: Refs) -> tuple[WafRef, ...]:
    """The WAFs that count per tenant (wafconfig.edge_metrics): Insight scrapes them."""
    return tuple(w for w in refs.wafs if resolves_tenants(bp, w.target))


def tenant_edge(bp: Blueprint, settings: Settings, target: str, pods: int) -> TenantEdge | None:
    """The tenants this WAF resolves: only when it fronts the api compute the gateway sends
    `*.<base>` and custom domains to (web hosts are not tenants). `pods`: the WAF's replica
    floor, over which each tenant's configured budget is split (wafconfig.PodLimit.share)."""
    gateway = bp.one("gateway")
    if gateway is None or not resolves_tenants(bp, target):
        return None
    tuning = settings.sentinel
    plans = {"business": tuning.rate_limits.business, "enterprise": tuning.rate_limits.enterprise}
    bases = (gateway.config.base_domain, *settings.edge.previous_domains)
    hosts = sorted(
        (host.lower(), t.id) for t in settings.tenants for host in (*(f"{t.id}.{b}" for b in bases), *t.domains)
    )
    limits = []
    for t in settings.tenants:
        budget = tuning.tenant_rate_limits.get(t.id, plans[t.plan])
        limits.append((t.id, PodLimit.share(budget.requests_per_second, budget.burst, pods)))
    return TenantEdge(tuning.tenant_header, tuple(hosts), tuple(sorted(limits)))


@dataclass(frozen=True)
class SentinelArgs:
    namespace: str
    name: str
    target: str
    # The workload the WAF forwards to: the target, or the login proxy in front of it.
    upstream: str
    upstream_selector: dict
    upstream_port: int
    replicas: int
    multi_zone: bool
    public: bool
    image: str
    waf: WafConfig
    audit: bool
    audit_parts: str
    # (max replicas, CPU utilisation %) when the target is autoscaled; None: fixed at `replicas`.
    autoscale: tuple[int, int] | None = None

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
            # The WAF sees every request the target does, so it is as wide as the target's floor.
            replicas=target.config.replicas_min,
            multi_zone=bp.multi_zone,
            public=public,
            image=settings.image("sentinel"),
            waf=WafConfig(
                backend=waf.upstream,
                rule_engine=RULE_ENGINE[resource.config.modo],
                paranoia=tuning.paranoia,
                anomaly_inbound=tuning.anomaly_inbound,
                anomaly_outbound=tuning.anomaly_outbound,
                allowed_methods=tuning.allowed_methods,
                allowed_content_types=tuning.allowed_content_types,
                max_body_mb=tuning.max_body_mb,
                max_nonfile_body_kb=tuning.nonfile_body_kb,
                max_arguments=tuning.max_arguments,
                max_requests=tuning.max_concurrent_requests,
                response_mime_types=tuning.response_mime_types,
                trusted_proxies=tuning.trusted_proxies,
                graphql_paths=tuning.graphql_paths,
                tenants=tenant_edge(bp, settings, target.nome, target.config.replicas_min),
            ),
            audit=settings.audit.waf,
            audit_parts=settings.audit.waf_log_parts,
            autoscale=(tuning.max_replicas or target.config.max_replicas, tuning.cpu_utilization)
            if any(a.config.alvo_recurso_id == target.nome for a in bp.of("autoscale"))
            else None,
        )

    @property
    def backend(self) -> str:
        return self.waf.backend

    @property
    def rule_engine(self) -> str:
        return self.waf.rule_engine


def config_problems(bp: Blueprint, settings: Settings) -> list[Problem]:
    """Kubernetes refuses a ConfigMap whose data exceeds 1 MiB, and the WAF's holds a line per
    tenant host: say so at validation, not as a failed `pulumi up` half-way through."""
    problems = []
    refs = Refs.of(bp, sso=settings.oidc is not None)
    for waf in refs.wafs:
        args = SentinelArgs.of(bp.by_name(waf.name), bp, settings, waf, public=False)
        size = sum(len(v.encode()) for v in config_files(args).values())
        if size > MAX_CONFIG_BYTES:
            problems.append(
                Problem(
                    "tenants",
                    f"sentinel {waf.name}: its nginx config with every tenant host and limit is {size} bytes, over "
                    f"the {MAX_CONFIG_BYTES} a ConfigMap holds; use fewer or shorter "
                    "custom domains, or split tenants across stacks",
                )
            )
    return problems


def pod_labels(args: SentinelArgs) -> dict:
    return meta.pod_labels(args.name, LAYER, args.public, {"b2b-platform.io/target": args.target})


def waf_env(args: SentinelArgs) -> list:
    """The image's own settings (wafconfig.env) and its audit log."""
    return [*wafconfig.env(args.waf), *audit_env(args)]


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


def config_files(args: SentinelArgs) -> dict[str, str]:
    """The ConfigMap's data: the platform's nginx server and ModSecurity override, and with
    tenants the per-tenant counters (EDGE_FILES)."""
    files = {
        "default.conf.template": wafconfig.nginx_server(args.waf),
        "modsecurity-override.conf.template": wafconfig.modsecurity_override(args.waf),
    }
    if args.waf.tenants:
        files["b2b-edge-metrics.conf.template"] = wafconfig.edge_metrics(args.waf.tenants)
        files["b2b_edge.js"] = wafconfig.edge_js()
    return files


def config_checksum(args: SentinelArgs) -> str:
    """In the pod template, so a configuration change (a tenant added, a limit changed) rolls the
    pods: nginx reads it at start. The roll adds a pod before it removes one (maxUnavailable 0),
    a new pod takes traffic only once ready, and an old one drains (DRAIN_SECONDS, SIGQUIT)."""
    return hashlib.sha256(repr(sorted(config_files(args).items())).encode()).hexdigest()[:16]


def seed_command(args: SentinelArgs) -> list:
    copies = [f"cp -a {path}/. {SEED_DIR}/{volume}/" for volume, path, seeded, _ in WRITABLE if seeded]
    files = {**CONFIG_FILES, **(EDGE_FILES if args.waf.tenants else {})}
    ours = [f"cp /config/{key} {SEED_DIR}/etc-nginx/{path}" for key, path in files.items()]
    if args.waf.tenants:
        # load_module belongs before `http {}`, in the image's own nginx.conf.template
        # (modsecurity-crs-docker release/20260804 nginx/templates/nginx.conf.template), which
        # loads only its ModSecurity and headers-more modules: prepend the njs module to it.
        ours.append(f"sed -i '1i load_module {wafconfig.NJS_MODULE};' {SEED_DIR}/etc-nginx/{NGINX_CONF_TEMPLATE}")
    dirs = " ".join(f"{SEED_DIR}/tmp/{d}" for d in MODSEC_TMP_DIRS)
    return ["sh", "-c", "set -eu; " + "; ".join(copies + ours) + f"; mkdir -p {dirs}"]


def seed_container(args: SentinelArgs) -> dict:
    mounts = [{"name": volume, "mountPath": f"{SEED_DIR}/{volume}"} for volume, _, seeded, _ in WRITABLE if seeded]
    return {
        "name": "seed-config",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "command": seed_command(args),
        "resources": meta.resources("50m", "32Mi", "200m", "64Mi"),
        "securityContext": meta.container_security_context(),
        "volumeMounts": [
            *mounts,
            {"name": "tmp", "mountPath": f"{SEED_DIR}/tmp"},
            {"name": CONFIG_VOLUME, "mountPath": "/config", "readOnly": True},
        ],
    }


def metrics_port() -> dict:
    """The per-tenant counters (wafconfig.edge_metrics); Insight's PodMonitor scrapes it by name."""
    return {"name": METRICS_PORT_NAME, "containerPort": wafconfig.METRICS_PORT, "protocol": "TCP"}


def waf_container(args: SentinelArgs) -> dict:
    return {
        "name": "modsecurity",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "ports": [
            {"name": "http", "containerPort": WAF_PORT, "protocol": "TCP"},
            *([metrics_port()] if args.waf.tenants else []),
        ],
        "env": waf_env(args),
        "resources": RESOURCES,
        "securityContext": meta.container_security_context(),
        # /healthz is answered by nginx itself, so a slow backend never restarts the WAF.
        "startupProbe": meta.http_probe("/healthz", "http", period=2, failures=60),
        "readinessProbe": meta.http_probe("/healthz", "http", period=5, failures=3),
        "livenessProbe": meta.http_probe("/healthz", "http", period=10, failures=6),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(DRAIN_SECONDS)]}}},
        "volumeMounts": [
            *({"name": volume, "mountPath": path} for volume, path, _, _ in WRITABLE),
            {"name": BODY_VOLUME, "mountPath": wafconfig.BODY_TEMP_DIR},
        ],
    }


def volumes(args: SentinelArgs) -> list:
    return [
        *(
            {"name": volume, "emptyDir": {"sizeLimit": size or args.waf.body_temp_size}}
            for volume, _, _, size in WRITABLE
        ),
        {"name": BODY_VOLUME, "emptyDir": {"sizeLimit": args.waf.body_temp_size}},
        {"name": CONFIG_VOLUME, "configMap": {"name": args.name}},
    ]


def deployment_spec(args: SentinelArgs) -> dict:
    pod = {
        "securityContext": meta.pod_security_context(WAF_UID),
        "initContainers": [seed_container(args)],
        "containers": [waf_container(args)],
        "volumes": volumes(args),
    }
    spec = meta.deployment_spec(
        args.name, pod_labels(args), args.multi_zone, pod, None if args.autoscale else args.replicas
    )
    spec["template"]["metadata"]["annotations"] = {"b2b-platform.io/waf-config": config_checksum(args)}
    return spec


def hpa_spec(args: SentinelArgs) -> dict | None:
    if args.autoscale is None:
        return None
    max_replicas, utilization = args.autoscale
    return resource_hpa_spec(args.name, args.replicas, max(max_replicas, args.replicas), "cpu", utilization)


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
        kube.Object(f"{name}-config", "v1", "ConfigMap", metadata=md, data=config_files(args), opts=child)
        deployment, service = kube.http_tier(name, md, deployment_spec(args), service_spec(args), child)
        hpa = hpa_spec(args)
        if hpa:
            kube.Object(f"{name}-hpa", "autoscaling/v2", "HorizontalPodAutoscaler", metadata=md, spec=hpa, opts=child)
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
