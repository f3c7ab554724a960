from conftest import seed, variant

from components import meta
from components.blueprint import parse_blueprint
from components.compute import ComputeArgs, deployment_spec
from components.settings import parse_settings


def args_for(nome: str, config: dict | None = None, **kw) -> ComputeArgs:
    bp = parse_blueprint(seed())
    defaults = {"namespace": "ns", "multi_zone": True, "public": False, "autoscaled": False}
    return ComputeArgs.of(bp.by_name(nome), parse_settings(config or {}), **{**defaults, **kw})


def test_demo_default_runs_the_pinned_echo_server():
    args = args_for("tenant-api")
    assert args.image == "traefik/whoami:v1.10.3"
    assert args.args == ("--port", "8080")
    assert args.probe_path == "/health"


def test_image_port_and_resources_from_stack_config():
    args = args_for(
        "tenant-api",
        {
            "computes": {
                "tenant-api": {
                    "image": "ghcr.io/acme/api:1.4.2",
                    "port": 9000,
                    "probePath": "/ready",
                    "memoryLimit": "1Gi",
                }
            }
        },
    )
    container = deployment_spec(args)["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/api:1.4.2"
    assert "args" not in container
    assert container["ports"][0]["containerPort"] == 9000
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["resources"]["limits"]["memory"] == "1Gi"


def test_autoscaled_deployment_leaves_replicas_to_the_autoscaler():
    assert "replicas" not in deployment_spec(args_for("tenant-api", autoscaled=True))
    assert deployment_spec(args_for("admin-ui"))["replicas"] == 2


def test_rollout_never_drops_capacity():
    strategy = deployment_spec(args_for("tenant-api"))["strategy"]
    assert strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_zone_spreading_only_under_multi_zona():
    def keys(a: ComputeArgs) -> list[str]:
        return [c["topologyKey"] for c in deployment_spec(a)["template"]["spec"]["topologySpreadConstraints"]]

    assert keys(args_for("tenant-api", multi_zone=True)) == [meta.ZONE_KEY, meta.HOST_KEY]
    assert keys(args_for("tenant-api", multi_zone=False)) == [meta.HOST_KEY]


def test_rendered_compute_objects(seed_render):
    for name in ("tenant-api", "admin-ui"):
        sa = seed_render.get("ServiceAccount", name)
        assert sa["automountServiceAccountToken"] is False
        dep = seed_render.get("Deployment", name)
        pod = dep["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name and pod["automountServiceAccountToken"] is False
        assert dep["spec"]["selector"]["matchLabels"] == meta.selector(name)
        assert meta.selector(name).items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        svc = seed_render.get("Service", name)
        assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == meta.selector(name)
        pdb = seed_render.get("PodDisruptionBudget", name)
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": meta.selector(name)}}
    assert "replicas" not in seed_render.get("Deployment", "tenant-api")["spec"]
    assert seed_render.get("Deployment", "admin-ui")["spec"]["replicas"] == 2


def test_zona_unica_has_no_zone_rule(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp.update(resiliencia="zona-unica")))
    for dep in rendered.kind("Deployment"):
        assert meta.ZONE_KEY not in str(dep["spec"]["template"]["spec"]["topologySpreadConstraints"])
    assert (
        len([p for p in rendered.kind("PodDisruptionBudget") if p["metadata"]["labels"][meta.LAYER_LABEL] == "compute"])
        == 2
    )


def test_service_ports_target_the_container_port_of_the_same_name():
    assert meta.service_spec("db", {"pg": 5432, "metrics": 9187}) == {
        "type": "ClusterIP",
        "selector": meta.selector("db"),
        "ports": [
            {"name": "pg", "port": 5432, "targetPort": "pg", "protocol": "TCP"},
            {"name": "metrics", "port": 9187, "targetPort": "metrics", "protocol": "TCP"},
        ],
    }
    assert meta.http_service_spec("web")["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
