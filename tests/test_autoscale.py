from conftest import resource, variant

from components.autoscale import AutoscaleArgs, behavior, hpa_spec, scaled_object_spec


def test_requests_metric_becomes_keda_scaled_object(seed_render):
    (so,) = seed_render.kind("ScaledObject")
    assert seed_render.kind("HorizontalPodAutoscaler") == []
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "tenant-api"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 20)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["threshold"] == "60"
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.saas-net.svc.cluster.local:9090"
    assert 'service="tenant-api"' in trigger["metadata"]["query"]
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == behavior()


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
