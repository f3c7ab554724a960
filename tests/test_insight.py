import json
import os
import re

import pytest
from conftest import ROOT, Rendered, dev_config, resource, variant

from components import meta
from components.contracts import MetricsRef
from components.insight import (
    OPERATOR_CONTAINERS,
    OPERATOR_INIT_CONTAINERS,
    image_version,
    platform_monitors,
    tenant_regex,
    tenant_relabelings,
)
from components.podsecurity import restricted_violations
from components.problems import InvalidInput
from components.render import run_program
from components.settings import parse_settings

NS = "saas-net"
PROMETHEUS_POD = MetricsRef("tenant-obs", NS).selector
TENANTS = ["acme", "globex", "initech"]  # Pulumi.dev.yaml
# The examples have no gateway, so their tenants can have no custom domains.
PLAIN_TENANTS = {"tenants": [{"id": t, "plan": "business", "isolation": "schema"} for t in TENANTS]}


def example(tmp_path, name: str, edit) -> str:
    """A copy of blueprints/examples/<name> changed by `edit(bp)`."""
    with open(os.path.join(ROOT, "blueprints", "examples", name), encoding="utf-8") as fh:
        bp = json.load(fh)
    edit(bp)
    path = tmp_path / name
    path.write_text(json.dumps(bp))
    return str(path)


def drop(*names):
    return lambda bp: bp.update(recursos=[r for r in bp["recursos"] if r["nome"] not in names])


def with_insight(alertas=True):
    return lambda bp: bp["recursos"].append(
        {"tipo": "insight", "nome": "core-obs", "config": {"retencao_dias": 30, "alertas": alertas}}
    )


def alerts(rendered) -> dict[str, list[str]]:
    (rule,) = rendered.kind("PrometheusRule")
    return {g["name"]: [r["alert"] for r in g["rules"]] for g in rule["spec"]["groups"]}


# --- the Prometheus server ----------------------------------------------------------------


def test_seed_prometheus(seed_render):
    prom = seed_render.get("Prometheus", "tenant-obs")
    spec = prom["spec"]
    assert prom["metadata"]["namespace"] == NS
    assert spec["retention"] == "90d"
    assert spec["replicas"] == 2
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    assert claim == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "standard",
    }
    assert spec["retentionSize"] == "40960MiB"  # 80 % of 50 GiB
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["enableAdminAPI"] is False
    assert spec["image"] == "quay.io/prometheus/prometheus:v3.13.1" and spec["version"] == "v3.13.1"
    assert spec["resources"] == {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    zones = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == meta.ZONE_KEY]
    assert zones == [
        {
            "maxSkew": 1,
            "topologyKey": meta.ZONE_KEY,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": PROMETHEUS_POD},
            "nodeTaintsPolicy": "Honor",
        }
    ]
    pdb = seed_render.get("PodDisruptionBudget", "tenant-obs-prometheus")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": PROMETHEUS_POD}}


def test_prometheus_reads_only_the_platforms_monitors(seed_render):
    spec = seed_render.get("Prometheus", "tenant-obs")["spec"]
    own = {"matchLabels": {"kubernetes.io/metadata.name": NS}}
    insight = {"matchLabels": {"app.kubernetes.io/part-of": "b2b-platform", meta.LAYER_LABEL: "insight"}}
    for kind in ("serviceMonitor", "podMonitor", "rule"):
        assert spec[f"{kind}NamespaceSelector"] == own
    assert spec["ruleSelector"] == insight
    assert (
        spec["serviceMonitorSelector"]
        == spec["podMonitorSelector"]
        == {"matchLabels": {"app.kubernetes.io/part-of": "b2b-platform"}}
    )
    # Null probe/scrapeConfig selectors select nothing.
    assert "probeSelector" not in spec and "scrapeConfigSelector" not in spec
    for obj in seed_render.kind("PrometheusRule"):
        assert insight["matchLabels"].items() <= obj["metadata"]["labels"].items()


@pytest.mark.parametrize("days, resiliencia, replicas", [(7, "zona-unica", 1), (365, "multi-zona", 2)])
def test_retention_and_replicas_follow_the_blueprint(render, tmp_path, days, resiliencia, replicas):
    def edit(bp):
        bp["resiliencia"] = resiliencia
        resource(bp, "tenant-obs")["config"]["retencao_dias"] = days

    spec = render(blueprint=variant(tmp_path, edit)).get("Prometheus", "tenant-obs")["spec"]
    assert spec["retention"] == f"{days}d"
    assert spec["replicas"] == replicas
    assert (meta.ZONE_KEY in str(spec["topologySpreadConstraints"])) == (resiliencia == "multi-zona")


@pytest.mark.parametrize("gb", [1, 200])
def test_the_retention_size_fits_the_volume_with_room_for_a_compaction(render, gb):
    spec = render({"insight": {"storageGb": gb}}).get("Prometheus", "tenant-obs")["spec"]
    assert spec["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == f"{gb}Gi"
    volume = gb * 1024**3
    retained = int(spec["retentionSize"].removesuffix("MiB")) * 1024**2
    # Blocks, WAL and head chunks all count against retentionSize; prometheus v3.13.1 docs/storage.md
    # "Right-Sizing Retention Size" recommends at most 80-85 % of the disk.
    assert retained <= volume * 80 // 100
    # A compaction writes its merged block (up to 10 % of the retention time: cmd/prometheus/main.go
    # storage.tsdb.max-block-duration) before deleting its sources; the peak still leaves 10 % free.
    assert retained * 110 // 100 <= volume * 90 // 100


def test_cluster_default_storage_class_when_unset():
    rendered = Rendered(run_program({k: v for k, v in dev_config().items() if k != "storageClass"}))
    claim = rendered.get("Prometheus", "tenant-obs")["spec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert "storageClassName" not in claim


def test_rbac_is_read_only_and_namespaced(seed_render):
    assert seed_render.kind("ClusterRole") == [] and seed_render.kind("ClusterRoleBinding") == []
    role = seed_render.get("Role", "tenant-obs-prometheus")
    assert role["metadata"]["namespace"] == NS
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("", "pods"), ("", "services"), ("discovery.k8s.io", "endpointslices")}
    binding = seed_render.get("RoleBinding", "tenant-obs-prometheus")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "tenant-obs-prometheus",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tenant-obs-prometheus", "namespace": NS}]
    assert seed_render.get("ServiceAccount", "tenant-obs-prometheus")["automountServiceAccountToken"] is False
    spec = seed_render.get("Prometheus", "tenant-obs")["spec"]
    assert spec["serviceAccountName"] == "tenant-obs-prometheus" and spec["automountServiceAccountToken"] is True
    assert spec["serviceDiscoveryRole"] == "EndpointSlice"


def operator_pod(spec: dict) -> dict:
    """The pod-level parts of the StatefulSet the operator will build, from the CR alone.

    Limitation: the real pod is made by the operator, not by this program, so this is a
    model: the containers the operator 0.93 creates (by name), carrying only the
    securityContext this CR patches onto them, and the CR's pod securityContext. The
    operator's own container defaults (no escalation, drop ALL) are deliberately not
    assumed, so compliance here rests on what the platform declares.
    """
    patches = {c["name"]: c for c in spec.get("containers", []) + spec.get("initContainers", [])}
    return {
        "securityContext": spec.get("securityContext", {}),
        "containers": [{"name": n, **patches.get(n, {})} for n in OPERATOR_CONTAINERS],
        "initContainers": [{"name": n, **patches.get(n, {})} for n in OPERATOR_INIT_CONTAINERS],
    }


def test_prometheus_pods_are_restricted(seed_render):
    spec = seed_render.get("Prometheus", "tenant-obs")["spec"]
    assert {c["name"] for c in spec["containers"]} == set(OPERATOR_CONTAINERS)
    assert {c["name"] for c in spec["initContainers"]} == set(OPERATOR_INIT_CONTAINERS)
    assert restricted_violations(operator_pod(spec)) == []
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"].get("runAsUser") != 0
    # The model is not vacuous: without the overrides it fails.
    bare = operator_pod({k: v for k, v in spec.items() if k not in ("containers", "initContainers", "securityContext")})
    assert "prometheus: allowPrivilegeEscalation is not false" in restricted_violations(bare)
    assert "init-config-reloader: runAsNonRoot is not true" in restricted_violations(bare)


def test_image_version_tracks_the_tag():
    assert image_version("quay.io/prometheus/prometheus:v3.13.1") == "v3.13.1"
    assert image_version("registry.local:5000/prometheus:v3.2.0") == "v3.2.0"
    assert image_version("registry.local:5000/prometheus") is None
    assert image_version("quay.io/prometheus/prometheus:main") is None


# --- monitors and tenant cardinality -------------------------------------------------------


def test_seed_monitors(seed_render):
    sm = seed_render.get("ServiceMonitor", "tenant-obs-computes")["spec"]
    assert sm["selector"] == {"matchLabels": {"app.kubernetes.io/part-of": "b2b-platform", meta.LAYER_LABEL: "compute"}}
    (endpoint,) = sm["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    # Every compute Service matches and names its port `http`.
    for svc in [s for s in seed_render.kind("Service") if s["metadata"]["labels"][meta.LAYER_LABEL] == "compute"]:
        assert sm["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert [p["name"] for p in svc["spec"]["ports"]] == ["http"]
    # The database's PodMonitors belong to the Datastore; this Prometheus selects them by part-of.
    for name in ("platform-db", "platform-db-pooler-rw"):
        labels = seed_render.get("PodMonitor", name)["metadata"]["labels"]
        assert platform_monitors()["matchLabels"].items() <= labels.items()
    broker = seed_render.get("PodMonitor", "tenant-obs-broker")["spec"]
    assert broker["selector"] == {"matchLabels": meta.selector("lifecycle")}
    assert [e["port"] for e in broker["podMetricsEndpoints"]] == ["metrics"]


def test_scrape_path_from_settings(render):
    sm = render({"insight": {"scrapePath": "/internal/metrics"}}).get("ServiceMonitor", "tenant-obs-computes")
    assert sm["spec"]["endpoints"][0]["path"] == "/internal/metrics"


def test_monitors_only_for_layers_present(render, tmp_path):
    only_computes = render(blueprint=variant(tmp_path, drop("platform-db", "lifecycle", "tenant-files")))
    assert only_computes.names("ServiceMonitor") == {"tenant-obs-computes"}
    # The WAF in front of the api compute counts per tenant: its PodMonitor and alert stay.
    assert only_computes.names("PodMonitor") == {"tenant-obs-edge-edge-waf"}
    assert alerts(only_computes) == {
        "tenant-obs-tenants": ["TenantHighErrorRate", "TenantHighLatencyP99"],
        "tenant-obs-edge": ["TenantThrottled"],
    }

    internal = render(PLAIN_TENANTS, blueprint=example(tmp_path, "internal-only.json", with_insight()))
    assert internal.names("ServiceMonitor") == {"core-obs-computes"}
    assert internal.names("PodMonitor") == {"core-db", "core-db-pooler-rw"}  # the Datastore's
    assert set(alerts(internal)) == {"core-obs-tenants", "core-obs-database"}


def test_no_insight_no_monitoring_objects(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, drop("tenant-obs", "api-scale")))
    for kind in ("Prometheus", "ServiceMonitor", "PrometheusRule"):
        assert rendered.kind(kind) == []
    # Only the Datastore's own PodMonitors remain, for a Prometheus the cluster may already run.
    assert {m["metadata"]["labels"][meta.LAYER_LABEL] for m in rendered.kind("PodMonitor")} == {"datastore"}
    assert not any("tenant-obs" in name for name in rendered.names("NetworkPolicy"))


def kept(regex: str, value) -> bool:
    """Prometheus `keep`: the regex is anchored at both ends; an absent label reads as ""."""
    return re.fullmatch(regex, "" if value is None else value) is not None


def test_tenant_regex_keeps_configured_tenants_only():
    regex = tenant_regex(["initech", "acme", "globex"])
    assert regex == "(_other|acme|globex|initech)?"
    # RE2-compatible: no lookaround, no backreferences, no possessive or atomic groups.
    assert not re.search(r"\(\?[=!<>]|\\[1-9]|\(\?>|[*+?]\+", regex)
    for value in (None, "", "acme", "globex", "initech", "_other"):
        assert kept(regex, value), value
    for value in ("acme2", "xacme", "acm", "ACME", "acme|globex", "acme.evil", "other", "_other_", " acme"):
        assert not kept(regex, value), value


def test_no_tenants_keeps_only_untagged_and_other():
    regex = tenant_regex([])
    assert regex == "(_other)?"
    assert kept(regex, None) and kept(regex, "_other") and not kept(regex, "acme")


def test_every_monitor_bounds_tenants_from_config(seed_render):
    expected = tenant_relabelings(TENANTS)
    assert expected == [{"action": "keep", "sourceLabels": ["tenant"], "regex": "(_other|acme|globex|initech)?"}]
    endpoints = [e for sm in seed_render.kind("ServiceMonitor") for e in sm["spec"]["endpoints"]]
    # The Datastore's PodMonitors carry no tenant label to bound (database metrics are per instance).
    endpoints += [
        e
        for pm in seed_render.kind("PodMonitor")
        if pm["metadata"]["labels"][meta.LAYER_LABEL] == "insight"
        for e in pm["spec"]["podMetricsEndpoints"]
    ]
    # The archive's carry no tenant either (SeaweedFS's metrics are per bucket and server).
    # The WAF's counters are bounded where they are made (its map's tenants and `_other`).
    bounded = [e for e in endpoints if "metricRelabelings" in e]
    assert len(bounded) == 2 and len(endpoints) == 4
    assert all(e["metricRelabelings"] == expected for e in bounded)


def test_onboarding_tenants_adds_no_resources(render):
    many = [{"id": f"t{i:03d}", "plan": "business", "isolation": "schema"} for i in range(200)]
    few = render()
    lots = render({"tenants": list(dev_config()["tenants"]) + many})
    assert len(lots.run.mocks.resources) == len(few.run.mocks.resources)
    regex = lots.get("ServiceMonitor", "tenant-obs-computes")["spec"]["endpoints"][0]["metricRelabelings"][0]["regex"]
    assert kept(regex, "t199") and kept(regex, "acme") and not kept(regex, "t200")


# --- alerts -------------------------------------------------------------------------------


def test_seed_alerts(seed_render):
    assert alerts(seed_render) == {
        "tenant-obs-tenants": ["TenantHighErrorRate", "TenantHighLatencyP99"],
        "tenant-obs-edge": ["TenantThrottled"],
        "tenant-obs-database": ["DatabaseInstanceDown", "DatabaseReplicationLag"],
        "tenant-obs-broker": ["BrokerDown", "BrokerJetStreamStorageHigh"],
    }
    (rule,) = seed_render.kind("PrometheusRule")
    rules = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for name in ("TenantHighErrorRate", "TenantHighLatencyP99"):
        assert "sum by (tenant" in rules[name]["expr"] and 'namespace="saas-net"' in rules[name]["expr"]
        assert "{{ $labels.tenant }}" in rules[name]["annotations"]["summary"]
    assert "> 0.05" in rules["TenantHighErrorRate"]["expr"] and 'code=~"5.."' in rules["TenantHighErrorRate"]["expr"]
    assert rules["TenantHighLatencyP99"]["expr"].startswith("(histogram_quantile(0.99, sum by (tenant, le)")
    # Quiet tenants don't page: the latency alert has the error-rate alert's traffic floor.
    floor = rules["TenantHighErrorRate"]["expr"].split(" and on (tenant) ")[1]
    assert rules["TenantHighLatencyP99"]["expr"].endswith(f" and on (tenant) {floor}")
    assert 'cnpg_collector_up{namespace="saas-net",cluster="platform-db"} == 0' in rules["DatabaseInstanceDown"]["expr"]
    assert 'absent(up{job="saas-net/platform-db"})' in rules["DatabaseInstanceDown"]["expr"]
    assert "cnpg_pg_replication_lag" in rules["DatabaseReplicationLag"]["expr"]
    assert 'up{job="saas-net/tenant-obs-broker"} == 0' in rules["BrokerDown"]["expr"]
    assert "gnatsd_varz_jetstream_stats_storage" in rules["BrokerJetStreamStorageHigh"]["expr"]
    assert {r["labels"]["severity"] for r in rules.values()} == {"warning", "critical"}
    assert all(re.fullmatch(r"\d+m", r["for"]) for r in rules.values())


def test_alertas_false_has_no_rule(render, tmp_path):
    rendered = render(
        blueprint=variant(tmp_path, lambda bp: resource(bp, "tenant-obs")["config"].update(alertas=False))
    )
    assert rendered.kind("PrometheusRule") == []
    assert rendered.kind("Prometheus") and rendered.kind("ServiceMonitor")


def test_alerts_follow_layer_config(render, tmp_path):
    def edit(bp):
        resource(bp, "platform-db")["config"]["ha"] = False
        resource(bp, "lifecycle")["config"]["jetstream"] = False

    groups = alerts(render(blueprint=variant(tmp_path, edit)))
    assert groups["tenant-obs-database"] == ["DatabaseInstanceDown"]  # one instance: no replica to lag
    assert groups["tenant-obs-broker"] == ["BrokerDown"]  # core NATS: no JetStream storage


def test_thresholds_from_settings(render):
    (rule,) = render({"insight": {"errorRate": 0.01, "latencyP99Seconds": 0.25}}).kind("PrometheusRule")
    rules = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert ") > 0.01) and on (tenant)" in rules["TenantHighErrorRate"]
    assert "> 0.25) and on (tenant)" in rules["TenantHighLatencyP99"]


# --- Grafana ------------------------------------------------------------------------------


def test_dashboard_has_a_tenant_selector(seed_render):
    cm = seed_render.get("ConfigMap", "tenant-obs-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = cm["data"].values()
    board = json.loads(text)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    tenant = variables["tenant"]
    assert tenant["type"] == "query" and tenant["multi"] and tenant["includeAll"]
    assert tenant["query"]["query"] == 'label_values(http_requests_total{namespace="saas-net"}, tenant)'
    assert variables["datasource"]["current"]["value"] == "tenant-obs-prometheus"
    titles = [p["title"] for p in board["panels"]]
    assert titles == [
        "Requests/s by tenant",
        "Error rate (5xx) by tenant",
        "p99 latency by tenant",
        "Throttled (429) at the WAF by tenant",
        "Unknown hosts (404) at the WAF",
    ]
    for panel in board["panels"]:
        (target,) = panel["targets"]
        assert "by (tenant" in target["expr"]
        assert panel["datasource"]["uid"] == "${datasource}"
    *per_tenant, unknown = [p["targets"][0]["expr"] for p in board["panels"]]
    assert all('tenant=~"$tenant"' in expr for expr in per_tenant)
    assert 'b2b_edge_throttled_total{namespace="saas-net",tenant!="",tenant=~"$tenant"}' in per_tenant[3]
    assert 'b2b_edge_requests_total{namespace="saas-net",tenant!="",tenant="_other",code="404"}' in unknown
    assert len({p["id"] for p in board["panels"]}) == 5


def test_grafana_datasource_points_at_this_prometheus(seed_render):
    cm = seed_render.get("ConfigMap", "tenant-obs-datasource")
    assert cm["metadata"]["labels"]["grafana_datasource"] == "1"
    (source,) = json.loads(next(iter(cm["data"].values())))["datasources"]
    assert (
        source["url"]
        == MetricsRef("tenant-obs", NS).url
        == "http://prometheus-operated.saas-net.svc.cluster.local:9090"
    )
    assert source["uid"] == "tenant-obs-prometheus" and source["type"] == "prometheus"


# --- network ------------------------------------------------------------------------------


def test_scrape_targets_admit_prometheus_only_on_metrics_ports(seed_render):
    prometheus = [{"podSelector": {"matchLabels": PROMETHEUS_POD}}]
    expected = {
        "tenant-obs-scrape-computes": (
            {"app.kubernetes.io/part-of": "b2b-platform", meta.LAYER_LABEL: "compute"},
            "http",
        ),
        "tenant-obs-scrape-database": ({"cnpg.io/cluster": "platform-db", "cnpg.io/podRole": "instance"}, "metrics"),
        "tenant-obs-scrape-broker": (meta.selector("lifecycle"), "metrics"),
    }
    for name, (pods, port) in expected.items():
        spec = seed_render.get("NetworkPolicy", name)["spec"]
        assert spec == {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": prometheus, "ports": [{"protocol": "TCP", "port": port}]}],
        }
    # The compute pods carry the labels the policy selects.
    for dep in [d for d in seed_render.kind("Deployment") if d["metadata"]["labels"][meta.LAYER_LABEL] == "compute"]:
        assert (
            expected["tenant-obs-scrape-computes"][0].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        )


def test_prometheus_admits_keda_and_grafana_on_9090(seed_render, render):
    spec = seed_render.get("NetworkPolicy", "tenant-obs-prometheus-queries")["spec"]
    assert spec["podSelector"] == {"matchLabels": PROMETHEUS_POD}
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9090}]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]] == [
        "keda",
        "monitoring",
    ]
    custom = render({"insight": {"kedaNamespace": "autoscalers", "grafanaNamespace": "observability"}})
    (rule,) = custom.get("NetworkPolicy", "tenant-obs-prometheus-queries")["spec"]["ingress"]
    assert [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]] == [
        "autoscalers",
        "observability",
    ]


def test_autoscaler_queries_the_insight_prometheus(seed_render):
    (so,) = seed_render.kind("ScaledObject")
    address = so["spec"]["triggers"][0]["metadata"]["serverAddress"]
    assert address == MetricsRef("tenant-obs", NS).url
    # The query selects the `service` label the ServiceMonitor's targets carry.
    assert 'service="tenant-api"' in so["spec"]["triggers"][0]["metadata"]["query"]


def test_prometheus_egress_to_the_api_server(seed_render, render):
    spec = seed_render.get("NetworkPolicy", "tenant-obs-prometheus-apiserver")["spec"]
    assert spec == {
        "podSelector": {"matchLabels": PROMETHEUS_POD},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}],  # the dev stack's apiServerCidr
                "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}],
            }
        ],
    }
    config = {k: v for k, v in dev_config().items() if k != "apiServerCidr"}
    unknown = Rendered(run_program(config)).get("NetworkPolicy", "tenant-obs-prometheus-apiserver")
    assert "to" not in unknown["spec"]["egress"][0]


def test_policies_only_for_layers_present(render, tmp_path):
    rendered = render(PLAIN_TENANTS, blueprint=example(tmp_path, "internal-only.json", with_insight(alertas=False)))
    assert {n for n in rendered.names("NetworkPolicy") if n.startswith("core-obs-")} == {
        "core-obs-scrape-computes",
        "core-obs-scrape-database",
        "core-obs-scrape-pooler",
        "core-obs-prometheus-queries",
        "core-obs-prometheus-apiserver",
    }
    assert rendered.kind("PrometheusRule") == []


# --- settings -----------------------------------------------------------------------------


def test_insight_settings_are_validated():
    with pytest.raises(InvalidInput) as info:
        parse_settings(
            {
                "insight": {
                    "scrapePath": "metrics",
                    "errorRate": 2,
                    "storageGb": 0,
                    "kedaNamespace": "KEDA",
                    "retention": "1d",
                }
            }
        )
    found = {p.path: p.message for p in info.value.problems}
    assert "not an absolute URL path" in found["insight.scrapePath"]
    assert found["insight.errorRate"] == "must be <= 1.0 (got 2)"
    assert found["insight.storageGb"] == "must be >= 1 (got 0)"
    assert "DNS-1123" in found["insight.kedaNamespace"]
    assert found["insight.retention"].startswith("unknown key; accepted: cpuLimit")


def test_the_archive_is_scraped(seed_render):
    """SeaweedFS serves Prometheus metrics on `-metricsPort` (9327, container port `metrics`)."""
    monitor = seed_render.get("PodMonitor", "tenant-obs-archive")["spec"]
    assert monitor["selector"]["matchLabels"]["app.kubernetes.io/name"] == "tenant-files"
    assert monitor["podMetricsEndpoints"][0]["port"] == "metrics"
    policy = seed_render.get("NetworkPolicy", "tenant-obs-scrape-archive")["spec"]
    assert policy["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
