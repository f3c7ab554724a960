"""Insight: per-tenant metrics for the platform through the Prometheus Operator.

A `Prometheus` (operator CR) in the fabric keeps `retencao_dias` days on a PVC and only
reads the platform's own monitors: the computes' Services (ServiceMonitor), the database
instances and the broker (PodMonitors), each only when its layer is in the blueprint.
Tenant cardinality is bounded where samples enter: every monitor keeps a sample only if
its `tenant` label is absent, a tenant from stack config, or `_other`. With `alertas`, a
PrometheusRule alerts per tenant (error rate, p99 latency), on the database and on the
broker. A Grafana dashboard (and its datasource) ships as sidecar-labelled ConfigMaps.

Metric conventions the computes follow (documented in docs/layers/insight.md): a counter
`http_requests_total{tenant, code}` and a histogram `http_request_duration_seconds{tenant}`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import kube, meta, sentinel
from .blueprint import Blueprint
from .blueprint import Insight as InsightResource
from .contracts import BrokerRef, DatabaseRef, MetricsRef, ObjectStoreRef, Refs, WafRef, present
from .settings import Settings

LAYER = "insight"
TENANT = "tenant"
REQUESTS = "http_requests_total"
LATENCY = "http_request_duration_seconds"
# The WAF's per-tenant counters (components/wafconfig.py edge_js).
EDGE_REQUESTS = "b2b_edge_requests_total"
EDGE_THROTTLED = "b2b_edge_throttled_total"
# A tenant refused by its rate limit in every 5-minute window for this long is throttled
# persistently; a burst over its limit ends well before.
THROTTLED_FOR = "15m"
# Below this many requests/s a tenant's error ratio is noise (one failed request of two is 50 %).
MIN_TENANT_RPS = 0.1
# Containers the operator builds into every Prometheus pod (prometheus-operator 0.93,
# pkg/prometheus/server/statefulset.go); the CR overrides their securityContext by name.
OPERATOR_CONTAINERS = ("prometheus", "config-reloader")
OPERATOR_INIT_CONTAINERS = ("init-config-reloader",)
# Prometheus deletes its oldest blocks once blocks, WAL and head chunks together pass retentionSize
# (prometheus v3.13.1 docs/storage.md: "at most 80-85%" of the disk). The low end: a compaction
# writes its merged block before deleting the sources, and a block spans up to 10 % of the
# retention time (cmd/prometheus/main.go, storage.tsdb.max-block-duration), so usage peaks about
# 10 % above retentionSize. The size follows insight.storageGb, so the claims must really have that
# size: growing them is a manual procedure (docs/changing-a-running-platform.md, growing a volume, components/day2.py).
# Prometheus 3's `retention.percentage` (of the real filesystem) would not need that, but
# prometheus-operator v0.93.0 writes only retention `time` and `size` (pkg/prometheus/promcfg.go).
RETENTION_SIZE_SHARE = 80


@dataclass(frozen=True)
class InsightArgs:
    namespace: str
    name: str
    retention_days: int
    alerts: bool
    multi_zone: bool
    tenants: tuple[str, ...]
    computes: tuple[str, ...]
    database: DatabaseRef | None
    database_ha: bool
    broker: BrokerRef | None
    jetstream: bool
    object_store: ObjectStoreRef | None
    metrics: MetricsRef
    image: str
    storage_gb: int
    storage_class: str | None
    scrape_path: str
    keda_namespace: str
    grafana_namespace: str
    api_server_cidr: str | None
    error_rate: float
    latency_p99_seconds: float
    resources: dict
    protect: bool
    purge: bool  # insight.purge: a delete really deletes the Prometheus (and the operator its StatefulSet)
    # Resources that must exist before the operator's CRs (its release and CRDs), when the stack installs add-ons.
    requires: tuple = ()
    # An autoscaler on `requests` queries this Prometheus through KEDA.
    keda_queries: bool = True
    # The WAFs that count requests per tenant (their `metrics` port).
    edges: tuple[WafRef, ...] = ()

    @classmethod
    def of(
        cls, resource: InsightResource, bp: Blueprint, settings: Settings, refs: Refs, requires: tuple = ()
    ) -> InsightArgs:
        own = settings.insight
        datastore, beacon = bp.one("datastore"), bp.one("beacon")
        return cls(
            namespace=refs.namespace,
            name=resource.nome,
            retention_days=resource.config.retencao_dias,
            alerts=resource.config.alertas,
            multi_zone=bp.multi_zone,
            tenants=tuple(t.id for t in settings.tenants),
            computes=tuple(c.nome for c in bp.of("compute")),
            database=refs.database,
            database_ha=bool(datastore and datastore.config.ha),
            broker=refs.broker,
            jetstream=bool(beacon and beacon.config.jetstream),
            object_store=refs.object_store,
            metrics=present(refs.metrics, "insight"),
            image=settings.image("prometheus"),
            storage_gb=own.storage_gb,
            storage_class=settings.storage_class,
            scrape_path=own.scrape_path,
            keda_namespace=own.keda_namespace,
            grafana_namespace=own.grafana_namespace,
            api_server_cidr=settings.api_server_cidr,
            error_rate=own.error_rate,
            latency_p99_seconds=own.latency_p99_seconds,
            resources=own.resources(),
            protect=settings.protect,
            purge=own.purge,
            requires=tuple(requires),
            keda_queries=any(a.config.metrica == "requests" for a in bp.of("autoscale")),
            edges=sentinel.tenant_wafs(bp, refs),
        )

    @property
    def account(self) -> str:
        return f"{self.name}-prometheus"


# --- tenant cardinality -------------------------------------------------------------------


def tenant_regex(tenants) -> str:
    """The `tenant` values a sample may carry: none, a configured tenant, or `_other`.

    RE2 (Prometheus) has no lookahead, so "anything but these" cannot be written; keeping
    the allowed values is the same filter. Prometheus anchors the regex at both ends. Tenant
    ids are DNS labels, so they need no escaping.
    """
    return "(" + "|".join(sorted({*tenants, meta.OTHER_TENANT})) + ")?"


def tenant_relabelings(tenants) -> list:
    """Drop samples whose tenant is not one we know.

    Dropped rather than rewritten to `_other`: two unknown tenants' series of one target
    would collapse into the same series within one scrape, Prometheus keeps only one of the
    duplicate samples, and the surviving counter jumps between their values (rate() reads
    resets). Apps that want unknown-tenant traffic counted label it `_other` themselves.
    Shared by every monitor, so onboarding a tenant changes one regex, not a resource per tenant.
    """
    return [{"action": "keep", "sourceLabels": [TENANT], "regex": tenant_regex(tenants)}]


# --- the Prometheus server ----------------------------------------------------------------


def monitor_labels() -> dict:
    """What this Prometheus selects its rules by: the platform's insight layer only."""
    return {"app.kubernetes.io/part-of": meta.PART_OF, meta.LAYER_LABEL: LAYER}


def platform_monitors() -> dict:
    """Monitors are owned by the layer they watch (the Datastore's PodMonitors), so select the platform's."""
    return {"matchLabels": {"app.kubernetes.io/part-of": meta.PART_OF}}


def replicas(args: InsightArgs) -> int:
    # Two identical scrapers under multi-zona: losing a zone loses neither metrics nor alerts.
    return 2 if args.multi_zone else 1


def image_version(image: str) -> str | None:
    """The operator gates flags on `version`; keep it in step with the pinned image's tag."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return tag if re.fullmatch(r"v\d+\.\d+\.\d+", tag) else None


def storage_spec(args: InsightArgs) -> dict:
    claim = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{args.storage_gb}Gi"}}}
    if args.storage_class:
        claim["storageClassName"] = args.storage_class
    return {"volumeClaimTemplate": {"spec": claim}}


def pod_security_context() -> dict:
    # OnRootMismatch: a large TSDB volume is not re-chowned on every restart.
    return {**meta.pod_security_context(), "fsGroupChangePolicy": "OnRootMismatch"}


def container_overrides(names) -> list:
    """Strategic-merge patches the operator applies, by name, to the containers it builds."""
    return [{"name": n, "securityContext": meta.container_security_context()} for n in names]


def prometheus_spec(args: InsightArgs) -> dict:
    own_namespace = {"matchLabels": {"kubernetes.io/metadata.name": args.namespace}}
    selector = {"matchLabels": monitor_labels()}
    spec = {
        "image": args.image,
        "replicas": replicas(args),
        "retention": f"{args.retention_days}d",
        "retentionSize": f"{args.storage_gb * 1024 * RETENTION_SIZE_SHARE // 100}MiB",
        "storage": storage_spec(args),
        # Metrics history outlives a deleted or scaled-down Prometheus unless the layer is purged.
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": "Delete" if args.purge else "Retain",
            "whenScaled": "Retain",
        },
        "resources": args.resources,
        "serviceAccountName": args.account,
        # Service discovery reads the API with this token (the ServiceAccount itself mounts none).
        "automountServiceAccountToken": True,
        # EndpointSlices, not the deprecated v1 Endpoints API; the Role grants exactly what this role watches.
        "serviceDiscoveryRole": "EndpointSlice",
        "serviceMonitorSelector": platform_monitors(),
        "serviceMonitorNamespaceSelector": own_namespace,
        "podMonitorSelector": platform_monitors(),
        "podMonitorNamespaceSelector": own_namespace,
        "ruleSelector": selector,
        "ruleNamespaceSelector": own_namespace,
        "scrapeInterval": "30s",
        "evaluationInterval": "30s",
        "enableAdminAPI": False,
        "enableServiceLinks": False,
        "podMetadata": {"labels": monitor_labels()},
        "securityContext": pod_security_context(),
        "containers": container_overrides(OPERATOR_CONTAINERS),
        "initContainers": container_overrides(OPERATOR_INIT_CONTAINERS),
        # The operator runs Prometheus as a StatefulSet: no pod-template-hash.
        "topologySpreadConstraints": meta.spread_constraints(args.metrics.selector, args.multi_zone, rollout_key=None),
    }
    version = image_version(args.image)
    if version:
        spec["version"] = version
    return spec


def role_rules() -> list:
    """Read-only, namespace-scoped: what EndpointSlice discovery of Services and Pods watches."""
    read = ["get", "list", "watch"]
    return [
        {"apiGroups": [""], "resources": ["pods", "services"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
    ]


# --- what it scrapes ----------------------------------------------------------------------


def service_monitor_spec(args: InsightArgs) -> dict:
    """Every compute's Service, port `http`; the job label is the Service (the autoscaler queries `service=`)."""
    return {
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": meta.PART_OF, meta.LAYER_LABEL: "compute"}},
        "endpoints": [
            {"port": "http", "path": args.scrape_path, "metricRelabelings": tenant_relabelings(args.tenants)}
        ],
    }


def pod_monitor_spec(selector: dict, port: str, tenants=None) -> dict:
    """`tenants`: bound the `tenant` label to them; None for targets whose metrics carry no tenant."""
    endpoint: dict = {"port": port}
    if tenants is not None:
        endpoint["metricRelabelings"] = tenant_relabelings(tenants)
    return {"selector": {"matchLabels": dict(selector)}, "podMetricsEndpoints": [endpoint]}


def monitor_specs(args: InsightArgs) -> dict[str, tuple[str, dict]]:
    """Monitors by role → (kind, spec), only for the layers the blueprint has."""
    specs: dict[str, tuple[str, dict]] = {}
    if args.computes:
        specs["computes"] = ("ServiceMonitor", service_monitor_spec(args))
    if args.broker:
        specs["broker"] = ("PodMonitor", pod_monitor_spec(args.broker.selector, args.broker.metrics_port, args.tenants))
    for waf in args.edges:
        # Bounded at the source: the WAF labels only the tenants of its map and `_other`, so
        # onboarding a tenant leaves this monitor as it is.
        specs[f"edge-{waf.name}"] = ("PodMonitor", pod_monitor_spec(waf.selector, sentinel.METRICS_PORT_NAME))
    if args.object_store:
        store = args.object_store
        # SeaweedFS's metrics are per bucket and server, never per tenant: onboarding changes nothing here.
        specs["archive"] = ("PodMonitor", pod_monitor_spec(store.selector, store.metrics_port))
    return specs


def pod_monitor_job(args: InsightArgs, monitor: str) -> str:
    # The operator's job label for a PodMonitor's targets.
    return f"{args.namespace}/{monitor}"


# --- queries, alerts, dashboard -----------------------------------------------------------


def _matchers(args: InsightArgs, *extra: str) -> str:
    return "{" + ",".join((f'namespace="{args.namespace}"', f'{TENANT}!=""', *extra)) + "}"


def tenant_rate(args: InsightArgs, window: str, *extra: str) -> str:
    return f"sum by ({TENANT}) (rate({REQUESTS}{_matchers(args, *extra)}[{window}]))"


def tenant_error_ratio(args: InsightArgs, window: str, *extra: str) -> str:
    errors = tenant_rate(args, window, *extra, 'code=~"5.."')
    return f"{errors} / {tenant_rate(args, window, *extra)}"


def tenant_p99(args: InsightArgs, window: str, *extra: str) -> str:
    return (
        f"histogram_quantile(0.99, sum by ({TENANT}, le) (rate({LATENCY}_bucket{_matchers(args, *extra)}[{window}])))"
    )


def edge_rate(args: InsightArgs, metric: str, window: str, *extra: str) -> str:
    """Per tenant, over every WAF pod (each counts its own requests from its start)."""
    return f"sum by ({TENANT}) (rate({metric}{_matchers(args, *extra)}[{window}]))"


def _alert(name: str, expr: str, wait: str, severity: str, summary: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def tenant_alerts(args: InsightArgs) -> list:
    busy = f"{tenant_rate(args, '5m')} > {MIN_TENANT_RPS}"
    return [
        _alert(
            "TenantHighErrorRate",
            f"({tenant_error_ratio(args, '5m')} > {args.error_rate}) and on ({TENANT}) ({busy})",
            "10m",
            "warning",
            f"Tenant {{{{ $labels.{TENANT} }}}}: {{{{ $value | humanizePercentage }}}} of requests fail with 5xx "
            f"(threshold {args.error_rate:.0%})",
        ),
        _alert(
            "TenantHighLatencyP99",
            # The same traffic floor: a quiet tenant's p99 is one or two slow requests.
            f"({tenant_p99(args, '5m')} > {args.latency_p99_seconds}) and on ({TENANT}) ({busy})",
            "10m",
            "warning",
            f"Tenant {{{{ $labels.{TENANT} }}}}: p99 latency {{{{ $value | humanizeDuration }}}} (threshold "
            f"{args.latency_p99_seconds}s)",
        ),
    ]


def edge_alerts(args: InsightArgs) -> list:
    """A tenant its rate limit keeps refusing. Unknown hosts (tenant `_other`) get no alert:
    scanners and stale DNS send them all day, nginx answers 404 without the API; the dashboard
    shows their rate."""
    return [
        _alert(
            "TenantThrottled",
            f"{edge_rate(args, EDGE_THROTTLED, '5m')} > 0",
            THROTTLED_FOR,
            "warning",
            f"Tenant {{{{ $labels.{TENANT} }}}}: the WAF refuses {{{{ $value | humanize }}}} requests/s over its "
            f"rate limit (429), continuously for {THROTTLED_FOR}",
        )
    ]


def database_alerts(args: InsightArgs, db: DatabaseRef) -> list:
    job = pod_monitor_job(args, db.cluster)  # the Datastore's own PodMonitor
    alerts = [
        _alert(
            "DatabaseInstanceDown",
            # Collector reports PostgreSQL down, or the exporter itself is unreachable or gone.
            f'cnpg_collector_up{{namespace="{args.namespace}",cluster="{db.cluster}"}} == 0'
            f' or up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})',
            "5m",
            "critical",
            f"PostgreSQL cluster {db.cluster}: instance {{{{ $labels.pod }}}} is down or not scraped",
        )
    ]
    if args.database_ha:
        alerts.append(
            _alert(
                "DatabaseReplicationLag",
                f'max by (pod) (cnpg_pg_replication_lag{{job="{job}"}}) > 30',
                "5m",
                "warning",
                f"PostgreSQL cluster {db.cluster}: replica {{{{ $labels.pod }}}} is "
                f"{{{{ $value | humanizeDuration }}}} behind",
            )
        )
    return alerts


def broker_alerts(args: InsightArgs, broker: BrokerRef) -> list:
    job = pod_monitor_job(args, f"{args.name}-broker")
    prefix = broker.metrics_prefix
    alerts = [
        _alert(
            "BrokerDown",
            f'up{{job="{job}"}} == 0 or absent(up{{job="{job}"}})',
            "5m",
            "critical",
            f"NATS {broker.name}: server {{{{ $labels.pod }}}} is down or not scraped",
        )
    ]
    if args.jetstream:
        alerts.append(
            _alert(
                "BrokerJetStreamStorageHigh",
                f'max by (pod) ({prefix}_varz_jetstream_stats_storage{{job="{job}"}})'
                f' / max by (pod) ({prefix}_varz_jetstream_config_max_storage{{job="{job}"}} > 0) > 0.8',
                "15m",
                "warning",
                f"NATS {broker.name}: JetStream storage on {{{{ $labels.pod }}}} is "
                f"{{{{ $value | humanizePercentage }}}} full",
            )
        )
    return alerts


def rule_groups(args: InsightArgs) -> list:
    """Alert groups for the layers present; grouped so one layer's rules evaluate together."""
    groups = []
    if args.computes:
        groups.append({"name": f"{args.name}-tenants", "rules": tenant_alerts(args)})
    if args.edges:
        groups.append({"name": f"{args.name}-edge", "rules": edge_alerts(args)})
    if args.database:
        groups.append({"name": f"{args.name}-database", "rules": database_alerts(args, args.database)})
    if args.broker:
        groups.append({"name": f"{args.name}-broker", "rules": broker_alerts(args, args.broker)})
    return groups


def datasource_uid(args: InsightArgs) -> str:
    return f"{args.name}-prometheus"[:40]


def datasource(args: InsightArgs) -> dict:
    """Grafana datasource provisioning for this Prometheus (the datasource sidecar reads it)."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": args.name,
                "uid": datasource_uid(args),
                "type": "prometheus",
                "access": "proxy",
                "url": args.metrics.url,
                "jsonData": {"timeInterval": "30s"},
            }
        ],
    }


def _panel(pid: int, title: str, expr: str, unit: str, y: int) -> dict:
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 24, "x": 0, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": f"{{{{{TENANT}}}}}"}],
    }


def dashboard(args: InsightArgs) -> dict:
    """Requests, errors and latency per tenant, with a tenant selector."""
    pick = f'{TENANT}=~"${TENANT}"'
    window = "$__rate_interval"
    tenants_query = f'label_values({REQUESTS}{{namespace="{args.namespace}"}}, {TENANT})'
    return {
        "uid": f"{args.name}-tenants"[:40],
        "title": f"{args.name}: tenants",
        "tags": [meta.PART_OF, LAYER],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": args.name, "value": datasource_uid(args)},
                },
                {
                    "name": TENANT,
                    "label": "Tenant",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "definition": tenants_query,
                    "query": {"query": tenants_query, "refId": TENANT},
                    "refresh": 2,
                    "sort": 1,
                    "multi": True,
                    "includeAll": True,
                },
            ]
        },
        "panels": [
            _panel(1, "Requests/s by tenant", tenant_rate(args, window, pick), "reqps", 0),
            _panel(2, "Error rate (5xx) by tenant", tenant_error_ratio(args, window, pick), "percentunit", 8),
            _panel(3, "p99 latency by tenant", tenant_p99(args, window, pick), "s", 16),
            *(edge_panels(args, window, pick) if args.edges else []),
        ],
    }


def edge_panels(args: InsightArgs, window: str, pick: str) -> list:
    """What the WAF refused before the API saw it: 429s by tenant, 404s for unknown hosts."""
    unknown = f'{TENANT}="{meta.OTHER_TENANT}"'
    return [
        _panel(4, "Throttled (429) at the WAF by tenant", edge_rate(args, EDGE_THROTTLED, window, pick), "reqps", 24),
        _panel(
            5,
            "Unknown hosts (404) at the WAF",
            edge_rate(args, EDGE_REQUESTS, window, unknown, 'code="404"'),
            "reqps",
            32,
        ),
    ]


# --- network ------------------------------------------------------------------------------


def policy_specs(args: InsightArgs) -> dict[str, dict]:
    """Ingress each scrape target opens to the Prometheus pods, and Prometheus' own flows.

    The operator makes no calls into Prometheus (the config reloader is a sidecar on
    localhost), so its namespace needs no rule. Egress to targets is the fabric's.
    """
    prometheus = [meta.pod_peer(args.metrics.selector)]
    specs = {}
    if args.computes:
        compute_pods = {"app.kubernetes.io/part-of": meta.PART_OF, meta.LAYER_LABEL: "compute"}
        specs["scrape-computes"] = meta.allow_ingress(compute_pods, prometheus, meta.tcp_ports("http"))
    if args.database:
        specs["scrape-database"] = meta.allow_ingress(
            args.database.instance_selector, prometheus, meta.tcp_ports(args.database.metrics_port)
        )
        specs["scrape-pooler"] = meta.allow_ingress(
            args.database.pooler_selector, prometheus, meta.tcp_ports(args.database.metrics_port)
        )
    if args.broker:
        specs["scrape-broker"] = meta.allow_ingress(
            args.broker.selector, prometheus, meta.tcp_ports(args.broker.metrics_port)
        )
    for waf in args.edges:
        specs[f"scrape-edge-{waf.name}"] = meta.allow_ingress(
            waf.selector, prometheus, meta.tcp_ports(sentinel.METRICS_PORT_NAME)
        )
    if args.object_store:
        specs["scrape-archive"] = meta.allow_ingress(
            args.object_store.selector, prometheus, meta.tcp_ports(args.object_store.metrics_port)
        )
    # KEDA's Prometheus trigger (autoscale `requests`) and Grafana query the API on 9090.
    # KEDA: the operator runs the scalers (kedacore/charts v2.20.2 keda/templates/manager/deployment.yaml
    # labels its pods app.kubernetes.io/name: keda-operator); its metrics server only asks the operator.
    queriers = [meta.namespace_peer(args.grafana_namespace)]
    if args.keda_queries:
        queriers.insert(0, meta.namespace_peer(args.keda_namespace, {"app.kubernetes.io/name": "keda-operator"}))
    specs["prometheus-queries"] = meta.allow_ingress(args.metrics.selector, queriers, meta.tcp_ports(args.metrics.port))
    # Kubernetes service discovery talks to the API server, which is not a pod of the fabric.
    specs["prometheus-apiserver"] = meta.api_server_egress(args.metrics.selector, args.api_server_cidr)
    return specs


class Insight(pulumi.ComponentResource):
    prometheus_name: pulumi.Output[str]
    url: str
    monitors: list[str]
    alerting: bool
    policies: list[str]

    def __init__(self, name: str, args: InsightArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:insight:Insight", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = args.namespace

        def md(suffix: str = "", labels: dict | None = None) -> dict:
            return meta.metadata(f"{args.name}{suffix}", ns, LAYER, labels)

        account_md = meta.metadata(args.account, ns, LAYER)
        account = kube.Object(
            f"{name}-sa", "v1", "ServiceAccount", metadata=account_md, automountServiceAccountToken=False, opts=child
        )
        kube.Object(
            f"{name}-role", "rbac.authorization.k8s.io/v1", "Role", metadata=account_md, rules=role_rules(), opts=child
        )
        binding = kube.Object(
            f"{name}-rolebinding",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            metadata=account_md,
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": args.account},
            subjects=[{"kind": "ServiceAccount", "name": args.account, "namespace": ns}],
            opts=child,
        )
        prometheus = k8s.apiextensions.CustomResource(
            f"{name}-prometheus",
            api_version="monitoring.coreos.com/v1",
            kind="Prometheus",
            metadata=meta.metadata(args.metrics.name, ns, LAYER),
            spec=prometheus_spec(args),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.requires, account, binding],
                protect=args.protect,
                retain_on_delete=not args.purge,
            ),
        )
        kube.Object(
            f"{name}-pdb",
            "policy/v1",
            "PodDisruptionBudget",
            metadata=md("-prometheus"),
            spec=meta.pdb_spec(args.metrics.selector),
            opts=child,
        )

        needs_operator = pulumi.ResourceOptions(parent=self, depends_on=list(args.requires))
        self.monitors = []
        for role, (kind, spec) in monitor_specs(args).items():
            k8s.apiextensions.CustomResource(
                f"{name}-{role}",
                api_version="monitoring.coreos.com/v1",
                kind=kind,
                metadata=md(f"-{role}"),
                spec=spec,
                opts=needs_operator,
            )
            self.monitors.append(f"{args.name}-{role}")

        groups = rule_groups(args) if args.alerts else []
        if groups:
            k8s.apiextensions.CustomResource(
                f"{name}-rules",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=md("-rules"),
                spec={"groups": groups},
                opts=needs_operator,
            )
        self.alerting = bool(groups)

        kube.Object(
            f"{name}-dashboard",
            "v1",
            "ConfigMap",
            metadata=md("-dashboard", {"grafana_dashboard": "1"}),
            data={f"{args.name}-tenants.json": json.dumps(dashboard(args), indent=2, sort_keys=True)},
            opts=child,
        )
        kube.Object(
            f"{name}-datasource",
            "v1",
            "ConfigMap",
            metadata=md("-datasource", {"grafana_datasource": "1"}),
            data={f"{args.name}-datasource.yaml": json.dumps(datasource(args), indent=2, sort_keys=True)},
            opts=child,
        )

        self.policies = []
        for role, spec in policy_specs(args).items():
            kube.Object(
                f"{name}-{role}",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                metadata=md(f"-{role}"),
                spec=spec,
                opts=child,
            )
            self.policies.append(f"{args.name}-{role}")

        self.prometheus_name = kube.name_of(prometheus)
        self.url = args.metrics.url
        self.register_outputs(
            {
                "prometheus_name": self.prometheus_name,
                "url": self.url,
                "monitors": self.monitors,
                "alerting": self.alerting,
                "policies": self.policies,
            }
        )
