import re

from conftest import resource, variant

from components.autoscale import AutoscaleArgs, behavior, hpa_spec, scaled_object_spec


def test_requests_metric_becomes_keda_scaled_object(seed_render):
    (so,) = seed_render.kind("ScaledObject")
    # KEDA owns tenant-api's HPA; the only HPA declared is the WAF's own (test_sentinel).
    assert [h["spec"]["scaleTargetRef"]["name"] for h in seed_render.kind("HorizontalPodAutoscaler")] == ["edge-waf"]
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tenant-api"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 20)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "60"
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.saas-net.svc.cluster.local:9090"
    assert 'service="tenant-api"' in trigger["metadata"]["query"]
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior()


def test_a_lost_scrape_is_not_read_as_zero_traffic(seed_render):
    """kedacore/keda v2.20.2 pkg/scalers/prometheus_scaler.go: `ignoreNullValues` defaults to true,
    so an empty query result (a lost scrape, Prometheus down) reads as 0 and scales the API to
    its floor. Off, it is an error, and after `failureThreshold` errors KEDA applies the
    fallback (apis/keda/v1alpha1/scaledobject_types.go: Fallback, CheckFallbackValid needs a
    non-CPU/memory trigger; behaviours static, currentReplicas, currentReplicasIfHigher, ...)."""
    (so,) = seed_render.kind("ScaledObject")
    (trigger,) = so["spec"]["triggers"]
    assert trigger["metadata"]["ignoreNullValues"] == "false"
    assert trigger["metricType"] == "AverageValue"
    assert so["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 10, "behavior": "currentReplicasIfHigher"}


def test_request_rate_window_holds_several_scrapes(seed_render):
    """Prometheus 3 range selectors are left-open: at the 30 s scrape interval (insight) a [1m]
    window holds at most two samples, so one late scrape leaves rate() with nothing."""
    (so,) = seed_render.kind("ScaledObject")
    (prometheus,) = seed_render.kind("Prometheus")
    query = so["spec"]["triggers"][0]["metadata"]["query"]
    window = int(re.search(r"\[(\d+)m\]", query).group(1)) * 60
    assert prometheus["spec"]["scrapeInterval"] == "30s" and window >= 4 * 30


def test_cpu_metric_becomes_hpa(render, tmp_path):
    path = variant(tmp_path, lambda bp: resource(bp, "api-scale")["config"].update(metrica="cpu", limiar=70))
    rendered = render(blueprint=path)
    assert rendered.kind("ScaledObject") == []
    hpa = rendered.get("HorizontalPodAutoscaler", "api-scale")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)


def test_scale_up_fast_scale_down_slow():
    b = behavior()
    assert b["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert b["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert max(p["value"] for p in b["scaleUp"]["policies"] if p["type"] == "Percent") > max(
        p["value"] for p in b["scaleDown"]["policies"]
    )


def test_explicit_prometheus_url_wins():
    args = AutoscaleArgs("ns", "s", "api", "requests", 10, 1, 5, "http://prom.example:9090", "q")
    assert scaled_object_spec(args)["triggers"][0]["metadata"]["serverAddress"] == "http://prom.example:9090"
    memory = AutoscaleArgs("ns", "s", "api", "memory", 80, 1, 5, None, None)
    assert hpa_spec(memory)["metrics"][0]["resource"]["name"] == "memory"
