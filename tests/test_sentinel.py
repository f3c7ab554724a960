import dataclasses
import re

import pytest
from conftest import resource, seed, variant

from components import meta, wafconfig
from components.blueprint import parse_blueprint
from components.contracts import Refs
from components.images import IMAGES
from components.podsecurity import restricted_violations
from components.problems import InvalidInput
from components.sentinel import WRITABLE, SentinelArgs, config_files, deployment_spec, seed_command, waf_env
from components.settings import parse_settings


def args_for(config: dict | None = None, edit=None) -> SentinelArgs:
    raw = seed()
    if edit:
        edit(raw)
    bp = parse_blueprint(raw)
    (waf,) = Refs.of(bp).wafs
    return SentinelArgs.of(bp.by_name(waf.name), bp, parse_settings(config or {}), waf, public=True)


def env(args: SentinelArgs) -> dict:
    return {e["name"]: e["value"] for e in waf_env(args)}


def pods_selected(policy: dict, rendered) -> set[str]:
    """Deployments whose pod labels the policy's podSelector matches."""
    want = policy["spec"]["podSelector"].get("matchLabels", {})
    return {
        d["metadata"]["name"]
        for d in rendered.kind("Deployment")
        if want.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    }


def ingress_rules_for(rendered, deployment: str) -> dict[str, list]:
    """Every NetworkPolicy ingress rule that admits traffic to a deployment's pods, by policy."""
    return {
        p["metadata"]["name"]: p["spec"]["ingress"]
        for p in rendered.kind("NetworkPolicy")
        if "Ingress" in p["spec"]["policyTypes"]
        and p["spec"].get("ingress")
        and deployment in pods_selected(p, rendered)
    }


@pytest.mark.parametrize("modo,engine", [("bloquear", "On"), ("detectar", "DetectionOnly")])
def test_modo_sets_the_rule_engine(modo, engine):
    args = args_for(edit=lambda bp: resource(bp, "edge-waf")["config"].update(modo=modo))
    assert args.rule_engine == engine
    assert env(args)["MODSEC_RULE_ENGINE"] == engine


def test_detect_mode_renders_detection_only(render, tmp_path):
    rendered = render(
        blueprint=variant(tmp_path, lambda bp: resource(bp, "edge-waf")["config"].update(modo="detectar"))
    )
    container = rendered.get("Deployment", "edge-waf")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODSEC_RULE_ENGINE", "value": "DetectionOnly"} in container["env"]
    assert rendered.run.exports["sentinels"] == {"edge-waf": "DetectionOnly"}


def test_crs_tuning_comes_from_stack_config():
    assert (
        env(args_for())["BLOCKING_PARANOIA"],
        env(args_for())["ANOMALY_INBOUND"],
        env(args_for())["ANOMALY_OUTBOUND"],
    ) == ("1", "5", "4")
    tuned = env(args_for({"sentinel": {"paranoia": 3, "anomalyInbound": 10, "anomalyOutbound": 8}}))
    assert (tuned["BLOCKING_PARANOIA"], tuned["ANOMALY_INBOUND"], tuned["ANOMALY_OUTBOUND"]) == ("3", "10", "8")


def test_backend_is_the_target_service_and_host_is_kept():
    assert env(args_for())["BACKEND"] == "http://tenant-api.saas-net.svc.cluster.local:80"
    assert env(args_for())["PORT"] == "8080"
    # The image forwards `Host $host` by default; nothing here may override it (the API resolves tenants from it).
    assert not {"PROXY_HOST_HEADER", "SERVER_NAME"} & set(env(args_for()))


def test_image_is_the_pinned_nginx_variant():
    assert re.fullmatch(r"owasp/modsecurity-crs:\d+\.\d+\.\d+-nginx-\d{12}", IMAGES["sentinel"])
    assert args_for().image == IMAGES["sentinel"]
    assert (
        args_for({"images": {"sentinel": "registry.local/crs:4.28.0-nginx-1"}}).image
        == "registry.local/crs:4.28.0-nginx-1"
    )


def test_replicas_and_spreading_follow_the_target():
    # Without an autoscaler on its target the WAF runs the target's floor.
    fixed = deployment_spec(args_for(edit=lambda bp: bp["recursos"].remove(resource(bp, "api-scale"))))
    assert fixed["replicas"] == 3  # tenant-api's replicas_min
    spec = deployment_spec(args_for())
    keys = [c["topologyKey"] for c in spec["template"]["spec"]["topologySpreadConstraints"]]
    assert keys == [meta.ZONE_KEY, meta.HOST_KEY]
    single = deployment_spec(args_for(edit=lambda bp: bp.update(resiliencia="zona-unica")))
    assert [c["topologyKey"] for c in single["template"]["spec"]["topologySpreadConstraints"]] == [meta.HOST_KEY]


def test_waf_pod_is_restricted_with_a_read_only_root():
    pod = deployment_spec(args_for())["template"]["spec"]
    assert restricted_violations(pod) == []
    assert pod["securityContext"]["runAsUser"] == 101 and pod["automountServiceAccountToken"] is False
    (seeder,) = pod["initContainers"]
    (waf,) = pod["containers"]
    for container in (seeder, waf):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["image"] == IMAGES["sentinel"]
    # Every directory the image writes to is an emptyDir mounted where it writes.
    assert {m["mountPath"] for m in waf["volumeMounts"]} == {
        "/etc/nginx",
        "/etc/modsecurity.d",
        "/opt/owasp-crs",
        "/tmp",
        "/var/cache/nginx",
    }
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} == {volume for volume, *_ in WRITABLE} | {
        "nginx-cache"
    }
    # ... and the config directories are seeded from the image before nginx starts.
    script = seed_command(args_for())[-1]
    for volume, path, seeded, _ in WRITABLE:
        assert (f"cp -a {path}/. /seed/{volume}/" in script) == seeded
        if seeded:
            assert {"name": volume, "mountPath": f"/seed/{volume}"} in seeder["volumeMounts"]
    assert "/seed/tmp/modsecurity/upload" in script


def test_probes_hit_the_waf_health_endpoint():
    waf = deployment_spec(args_for())["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert waf[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # The per-tenant counters (wafconfig.edge_metrics) on their own port, for Insight's PodMonitor.
    assert waf["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9145, "protocol": "TCP"},
    ]


def test_rendered_waf_tier(seed_render):
    assert seed_render.get("ServiceAccount", "edge-waf")["automountServiceAccountToken"] is False
    svc = seed_render.get("Service", "edge-waf")["spec"]
    assert svc["selector"] == meta.selector("edge-waf")
    assert svc["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert seed_render.get("PodDisruptionBudget", "edge-waf")["spec"] == meta.pdb_spec(meta.selector("edge-waf"))


def test_only_the_waf_reaches_the_shielded_api(seed_render):
    def labels(name):
        return seed_render.get("Deployment", name)["spec"]["template"]["metadata"]["labels"]

    assert labels("edge-waf")[meta.ENTRYPOINT_LABEL] == "true"
    assert meta.ENTRYPOINT_LABEL not in labels("tenant-api")  # the edge can no longer reach the API directly
    assert labels("admin-ui")[meta.ENTRYPOINT_LABEL] == "true"  # unshielded computes stay entry points

    assert ingress_rules_for(seed_render, "tenant-api") == {
        "allow-edge-waf-to-tenant-api": [
            {
                "from": [{"podSelector": {"matchLabels": meta.selector("edge-waf")}}],
                "ports": [{"protocol": "TCP", "port": 8080}],
            }
        ],
        # Insight's Prometheus scrapes every compute on its `http` port; nothing else gets in.
        "tenant-obs-scrape-computes": [
            {
                "from": [
                    {
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "prometheus",
                                "operator.prometheus.io/name": "tenant-obs",
                            }
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": "http"}],
            }
        ],
    }
    assert ingress_rules_for(seed_render, "edge-waf") == {
        "allow-edge": [
            {
                "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
                "ports": [{"protocol": "TCP", "port": "http"}, {"protocol": "TCP", "port": "s3"}],
            }
        ],
        # Only Prometheus reaches the per-tenant counters (the edge's rule names `http` only).
        "tenant-obs-scrape-edge-edge-waf": [
            {
                "from": [
                    {
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "prometheus",
                                "operator.prometheus.io/name": "tenant-obs",
                            }
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": "metrics"}],
            }
        ],
    }


def test_policy_port_follows_the_compute_port(render):
    rendered = render({"computes": {"tenant-api": {"image": "ghcr.io/acme/api:1.0.0", "port": 9000}}})
    policy = rendered.get("NetworkPolicy", "allow-edge-waf-to-tenant-api")["spec"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_without_a_sentinel_the_api_is_an_entrypoint_again(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp["recursos"].remove(resource(bp, "edge-waf"))))
    assert "edge-waf" not in rendered.names("Deployment")
    assert not any(n.startswith("allow-edge-waf") for n in rendered.names("NetworkPolicy"))
    assert (
        rendered.get("Deployment", "tenant-api")["spec"]["template"]["metadata"]["labels"][meta.ENTRYPOINT_LABEL]
        == "true"
    )


def test_private_fabric_waf_is_no_entrypoint():
    private = dataclasses.replace(args_for(), public=False)
    assert meta.ENTRYPOINT_LABEL not in deployment_spec(private)["template"]["metadata"]["labels"]


def test_the_waf_scales_with_what_it_protects(seed_render):
    """The seed autoscales tenant-api (KEDA, 3..20): the WAF in front of it gets its own CPU HPA
    from the target's floor to its ceiling, and no fixed replica count to fight it."""
    hpa = seed_render.get("HorizontalPodAutoscaler", "edge-waf")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "edge-waf"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
    assert hpa["metrics"][0]["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert "replicas" not in seed_render.get("Deployment", "edge-waf")["spec"]


def test_waf_autoscaling_bounds_from_settings(render, tmp_path):
    hpa = render({"sentinel": {"maxReplicas": 8, "cpuUtilization": 60}}).get("HorizontalPodAutoscaler", "edge-waf")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    unscaled = render(blueprint=variant(tmp_path, lambda bp: bp["recursos"].remove(resource(bp, "api-scale"))))
    assert unscaled.kind("HorizontalPodAutoscaler") == []


def test_the_platforms_server_and_override_replace_the_image_templates(seed_render):
    """coreruleset/modsecurity-crs-docker release/20260804: the nginx base image renders
    /etc/nginx/templates/**.template into /etc/nginx; conf.d/default.conf is the server and
    modsecurity.d/modsecurity-override.conf.template (empty upstream) is copied to
    /etc/modsecurity.d by 90-copy-modsecurity-config.sh and included by setup.conf."""
    config = seed_render.get("ConfigMap", "edge-waf")["data"]
    assert set(config) == {
        "default.conf.template",
        "modsecurity-override.conf.template",
        "b2b-edge-metrics.conf.template",
        "b2b_edge.js",
    }
    script = seed_command(args_for())[-1]
    assert "cp /config/default.conf.template /seed/etc-nginx/templates/conf.d/default.conf.template" in script
    assert (
        "cp /config/modsecurity-override.conf.template "
        "/seed/etc-nginx/templates/modsecurity.d/modsecurity-override.conf.template"
    ) in script
    # Copied after the image's own files, which it replaces.
    assert script.index("cp -a /etc/nginx/.") < script.index("cp /config/default.conf.template")
    # The counters: in conf.d (included in `http {}` by the image's nginx.conf.template), their
    # njs module where js_import looks, and the module loaded before `http {}` (nginx/
    # docker-nginx-unprivileged stable/debian/Dockerfile at e26803b installs nginx-module-njs
    # 1.30.4+1.0.0; the package's modules directory is /etc/nginx/modules, where the image's
    # nginx.conf.template loads ModSecurity from).
    assert (
        "cp /config/b2b-edge-metrics.conf.template /seed/etc-nginx/templates/conf.d/b2b-edge-metrics.conf.template"
    ) in script
    assert "cp /config/b2b_edge.js /seed/etc-nginx/b2b_edge.js" in script
    assert "js_import b2b_edge from /etc/nginx/b2b_edge.js;" in config["b2b-edge-metrics.conf.template"]
    assert (
        "sed -i '1i load_module modules/ngx_http_js_module.so;' /seed/etc-nginx/templates/nginx.conf.template"
    ) in script
    assert script.index("cp -a /etc/nginx/.") < script.index("sed -i")
    assert "${" not in config["b2b-edge-metrics.conf.template"]
    deployment = seed_render.get("Deployment", "edge-waf")["spec"]["template"]
    assert {"name": "waf-config", "configMap": {"name": "edge-waf"}} in deployment["spec"]["volumes"]
    # nginx reads it at start only: a change must roll the pods.
    before = deployment["metadata"]["annotations"]["b2b-platform.io/waf-config"]
    changed = deployment_spec(args_for({"sentinel": {"maxBodyMb": 4}}))["template"]["metadata"]["annotations"]
    assert changed["b2b-platform.io/waf-config"] != before
    # The image's templates would need the variables our server no longer reads; none left unrendered.
    assert "${" not in config["default.conf.template"]


def test_body_limits_agree_and_size_the_buffer_volumes():
    """One body limit for nginx and ModSecurity; the volumes nginx (client_temp) and ModSecurity
    (multipart files under /tmp, SecTmpSaveUploadedFiles on in the image) write bodies to hold
    every request worker_connections admits at full size, so a pod is never evicted for it."""
    args = args_for({"sentinel": {"maxBodyMb": 4, "maxConcurrentRequests": 32}})
    e = env(args)
    assert e["MODSEC_REQ_BODY_LIMIT"] == str(4 * 1024 * 1024)
    assert "client_max_body_size 4m;" in wafconfig.nginx_server(args.waf)
    assert e["WORKER_CONNECTIONS"] == "64"
    volumes = {
        v["name"]: v.get("emptyDir", {}).get("sizeLimit") for v in deployment_spec(args)["template"]["spec"]["volumes"]
    }
    assert volumes["nginx-cache"] == volumes["tmp"] == f"{32 * 4 + 16}Mi"
    # The non-file (JSON, form) limit never exceeds the whole body's.
    assert env(args_for({"sentinel": {"maxBodyMb": 1}}))["MODSEC_REQ_BODY_NOFILES_LIMIT"] == str(1024 * 1024)


def test_api_friendly_waf_env():
    """configure-rules.v4.conf (modsecurity-crs-docker release/20260804) maps ALLOWED_METHODS to
    CRS rule 900200 and ALLOWED_REQUEST_CONTENT_TYPE to 900220; MODSEC_* feed modsecurity.conf."""
    e = env(args_for())
    assert e["ALLOWED_METHODS"] == "GET HEAD POST PUT PATCH DELETE OPTIONS"
    types = e["ALLOWED_REQUEST_CONTENT_TYPE"].split()
    assert "|application/merge-patch+json|" in types and "|application/json|" in types and "|image/png|" in types
    assert e["MODSEC_ARGUMENTS_LIMIT"] == "10000" and e["MODSEC_REQ_BODY_NOFILES_LIMIT"] == str(2048 * 1024)
    assert "application/json" in e["MODSEC_RESP_BODY_MIMETYPE"].split()
    narrow = env(args_for({"sentinel": {"allowedMethods": "GET, POST", "allowedContentTypes": ["application/json"]}}))
    assert (narrow["ALLOWED_METHODS"], narrow["ALLOWED_REQUEST_CONTENT_TYPE"]) == ("GET POST", "|application/json|")


@pytest.mark.parametrize(
    "sentinel,path,message",
    [
        ({"allowedMethods": ["GET", "FETCH"]}, "sentinel.allowedMethods[1]", "'FETCH' is not an HTTP method"),
        ({"allowedContentTypes": ["application/json; charset=utf-8"]}, "sentinel.allowedContentTypes[0]", "media type"),
        ({"trustedProxies": ["10.0.0.1/8"]}, "sentinel.trustedProxies[0]", "CIDR"),
        ({"graphqlPaths": ["graphql"]}, "sentinel.graphqlPaths[0]", "URL path"),
        ({"maxBodyMb": 0}, "sentinel.maxBodyMb", ""),
        (
            {"maxBodyMb": 1, "maxNonfileBodyKb": 2048},
            "sentinel.maxNonfileBodyKb",
            "at most maxBodyMb (1 MiB = 1024 KiB)",
        ),
    ],
)
def test_bad_waf_settings(sentinel, path, message):
    with pytest.raises(InvalidInput) as err:
        parse_settings({"sentinel": sentinel})
    assert any(p.path == path and message in p.message for p in err.value.problems), err.value.problems


# --- tenant resolution and rate limits at the edge (issue 19) ---------------------------------

ACME = {"id": "acme", "plan": "business", "isolation": "schema", "domains": ["portal.acme-corp.com"]}
GLOBEX = {"id": "globex", "plan": "enterprise", "isolation": "rls"}


def test_the_waf_in_front_of_the_api_maps_every_tenant_host():
    edge = args_for({"tenants": [ACME, GLOBEX]}).waf.tenants
    assert edge is not None and edge.header == "X-Tenant-Id"
    assert edge.hosts == (
        ("acme.app.acme.io", "acme"),
        ("globex.app.acme.io", "globex"),
        ("portal.acme-corp.com", "acme"),
    )


def test_a_waf_in_front_of_a_web_compute_resolves_no_tenants():
    def shield_admin(bp):
        resource(bp, "edge-waf")["config"]["alvo_recurso_id"] = "admin-ui"

    args = args_for({"tenants": [ACME]}, edit=shield_admin)
    assert args.waf.tenants is None
    assert "b2b_tenant" not in wafconfig.nginx_server(args.waf)
    # Nothing to count per tenant: no counters, no njs module, no metrics port.
    assert set(config_files(args)) == {"default.conf.template", "modsecurity-override.conf.template"}
    assert "load_module" not in seed_command(args)[-1]
    assert [p["name"] for p in deployment_spec(args)["template"]["spec"]["containers"][0]["ports"]] == ["http"]


def test_the_configured_rate_is_split_over_the_wafs_replica_floor():
    """nginx counts per pod. The seed's WAF runs 3..20 pods (tenant-api's bounds): each pod
    admits a third of the configured rate and burst, rounded up, so at the floor a tenant gets
    what it was configured and at n pods n/3 of it."""
    args = args_for(
        {"tenants": [ACME, GLOBEX], "sentinel": {"tenantRateLimits": {"globex": {"requestsPerSecond": 7, "burst": 1}}}}
    )
    limits = dict(args.waf.tenants.limits)
    assert limits["acme"] == wafconfig.PodLimit(per_minute=50 * 60 // 3, burst=34)  # business: 50 r/s, burst 100
    assert limits["globex"] == wafconfig.PodLimit(per_minute=140, burst=1)  # 7 r/s = 420 r/m over 3 pods
    assert limits["globex"].retry_after == 1
    assert wafconfig.PodLimit.share(1, 0, 3).retry_after == 3


def test_tenants_with_the_same_limit_share_a_zone_with_a_counter_each():
    tenants = [{**ACME, "id": f"t{i}", "domains": []} for i in range(50)]
    edge = args_for({"tenants": tenants}).waf.tenants
    assert list(edge.zones.values()) == [50]
    server = wafconfig.nginx_server(args_for({"tenants": tenants}).waf)
    assert server.count("limit_req_zone ") == 1 and server.count("limit_req zone=") == 1


def test_a_changed_map_rolls_the_pods_without_losing_capacity():
    """The map lives in the ConfigMap nginx reads at start; its checksum in the pod template
    rolls the Deployment: one pod added before one is removed, and a stopping pod drains."""
    before = deployment_spec(args_for({"tenants": [ACME]}))
    after = deployment_spec(args_for({"tenants": [ACME, GLOBEX]}))
    key = "b2b-platform.io/waf-config"
    assert before["template"]["metadata"]["annotations"][key] != after["template"]["metadata"]["annotations"][key]
    assert after["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = after["template"]["spec"]
    (waf,) = pod["containers"]
    assert waf["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}
    assert "readinessProbe" in waf and pod["terminationGracePeriodSeconds"] > 5


def test_the_counter_dict_grows_with_the_tenants_in_the_same_configmap():
    """16 counters a tenant (and `_other`), 4000 a MiB (measured with njs 1.0.0: 4047)."""

    def zone(count: int) -> str:
        tenants = [{"id": f"t{i}", "plan": "business", "isolation": "schema"} for i in range(count)]
        (line,) = [
            line
            for line in config_files(args_for({"tenants": tenants}))["b2b-edge-metrics.conf.template"].splitlines()
            if line.startswith("js_shared_dict_zone")
        ]
        return line

    assert zone(3) == "js_shared_dict_zone zone=b2b_edge:1m type=number;"
    assert zone(5000) == "js_shared_dict_zone zone=b2b_edge:21m type=number;"


def test_a_business_tenant_adds_no_resource():
    """benchmarks/measure.py's resource count: the host map and limits are data in the WAF's ConfigMap."""
    from benchmarks.measure import types
    from benchmarks.run import STACK_FILE
    from components.__main__ import read_stack_file

    config, _ = read_stack_file(STACK_FILE)
    base = [ACME, GLOBEX]
    initech = {"id": "initech", "plan": "business", "isolation": "schema"}
    assert types(config, [*base, initech]) == types(config, base)


def test_rendered_waf_config_carries_the_dev_tenants(render):
    from conftest import dev_config

    server = render(dev_config()).get("ConfigMap", "edge-waf")["data"]["default.conf.template"]
    for tenant in ("acme", "globex", "initech"):
        assert f"    {tenant}.app.acme.io {tenant};" in server
    assert "proxy_set_header X-Tenant-Id $b2b_tenant;" in server and "${" not in server


@pytest.mark.parametrize(
    "config,path,message",
    [
        ({"sentinel": {"rateLimits": {"gold": {"requestsPerSecond": 5}}}}, "sentinel.rateLimits.gold", "business"),
        (
            {"sentinel": {"rateLimits": {"business": {"requestsPerSecond": -5}}}},
            "sentinel.rateLimits.business.requestsPerSecond",
            "must be >= 1 (got -5)",
        ),
        (
            {"sentinel": {"tenantRateLimits": {"acme": {"requestsPerSecond": 5, "burst": -1}}}},
            "sentinel.tenantRateLimits.acme.burst",
            "must be >= 0",
        ),
        ({"sentinel": {"tenantHeader": "X Tenant"}}, "sentinel.tenantHeader", "not a valid HTTP header name"),
        ({"sentinel": {"tenantHeader": "X-Tenant:Id"}}, "sentinel.tenantHeader", "not a valid HTTP header name"),
        ({"sentinel": {"tenantHeader": "X_Tenant_Id"}}, "sentinel.tenantHeader", "'_' is refused"),
        ({"sentinel": {"tenantHeader": "X-Forwarded-Host"}}, "sentinel.tenantHeader", "sets or strips itself"),
    ],
)
def test_bad_tenant_edge_settings(config, path, message):
    with pytest.raises(InvalidInput) as err:
        parse_settings(config)
    assert any(p.path == path and message in p.message for p in err.value.problems), err.value.problems


def test_an_override_for_an_unknown_tenant_is_refused():
    from components.settings import cross_check_settings

    settings = parse_settings(
        {
            "tenants": [ACME],
            "sentinel": {"tenantRateLimits": {"acme": {"requestsPerSecond": 9}, "initech": {"requestsPerSecond": 9}}},
        }
    )
    (problem,) = cross_check_settings(settings, parse_blueprint(seed()))
    assert problem.path == "sentinel.tenantRateLimits.initech"
    assert "no tenant 'initech' in tenants (configured: acme)" in problem.message


def test_most_tenants_need_no_zone_line_and_a_too_large_map_is_refused():
    """The common limit is the zone map's default; a ConfigMap's values may total 1 MiB at most."""
    from components.settings import cross_check_settings

    def tenants(domains: int) -> list[dict]:
        return [
            {
                "id": f"tenant-{i:05d}-acme-corporation",
                "plan": "business",
                "isolation": "schema",
                "domains": [f"portal{j}.customer-{i}.example-company.com" for j in range(domains)],
            }
            for i in range(5000)
        ]

    initech = {"id": "initech", "plan": "business", "isolation": "schema"}
    server = wafconfig.nginx_server(args_for({"tenants": [ACME, GLOBEX, initech]}).waf)
    assert "    acme b2b_rl" not in server and "    globex b2b_rl_4000rpm_b134;" in server
    assert cross_check_settings(parse_settings({"tenants": tenants(1)}), parse_blueprint(seed())) == []
    (problem,) = cross_check_settings(parse_settings({"tenants": tenants(3)}), parse_blueprint(seed()))
    assert problem.path == "tenants" and "over the 1048576 a ConfigMap holds" in problem.message
