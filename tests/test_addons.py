import pytest
from conftest import resource, variant

from components.addons import HOST_PORT_LEVEL, Addons, AddonsArgs, Release, crd_owners, namespace_levels, releases
from components.contracts import CERT_MANAGER_NAMESPACE
from components.render import run_program
from components.settings import Settings

# Exact chart versions checked against each chart's Chart.yaml upstream (docs/addons.md).
PINNED = {
    "cert-manager": ("cert-manager", "v1.21.1", "https://charts.jetstack.io", "cert-manager"),
    "cloudnative-pg": ("cloudnative-pg", "0.29.0", "https://cloudnative-pg.github.io/charts", "cnpg-system"),
    "barman-cloud": ("plugin-barman-cloud", "0.7.0", "https://cloudnative-pg.github.io/charts", "cnpg-system"),
    "traefik": ("traefik", "41.3.0", "https://traefik.github.io/charts", "traefik"),
    "metrics-server": (
        "metrics-server",
        "3.13.1",
        "https://kubernetes-sigs.github.io/metrics-server/",
        "metrics-server",
    ),
    "keda": ("keda", "2.20.2", "https://kedacore.github.io/charts", "keda"),
    "prometheus-operator": (
        "kube-prometheus-stack",
        "88.5.3",
        "https://prometheus-community.github.io/helm-charts",
        "monitoring",
    ),
    "nack": ("nack", "0.34.0", "https://nats-io.github.io/k8s/helm/charts/", "nack"),
}


def helm(rendered, key):
    return rendered.run.mocks.named(f"addons-{key}").inputs


def test_every_release_is_pinned_to_its_chart_repo_and_namespace(seed_render):
    recorded = {
        r.name.removeprefix("addons-"): r.inputs for r in seed_render.run.mocks.of_type("kubernetes:helm.sh/v3:Release")
    }
    assert set(recorded) == set(PINNED)
    for key, (chart, version, repo, namespace) in PINNED.items():
        inputs = recorded[key]
        assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"], inputs["namespace"]) == (
            chart,
            version,
            repo,
            namespace,
        ), key
        # Stable Helm release names: no random suffix in the cluster.
        assert inputs["name"] == key


def test_releases_get_the_values_that_matter(seed_render):
    assert helm(seed_render, "cert-manager")["values"]["crds"] == {"enabled": True, "keep": True}
    assert helm(seed_render, "metrics-server")["values"]["args"] == ["--kubelet-insecure-tls"]
    assert helm(seed_render, "keda")["values"]["crds"] == {
        "install": True,
        "additionalAnnotations": {"helm.sh/resource-policy": "keep"},
    }
    barman = helm(seed_render, "barman-cloud")["values"]
    assert barman["image"]["tag"] == barman["sidecarImage"]["tag"] == "v0.14.0"
    prom = helm(seed_render, "prometheus-operator")["values"]
    assert prom["crds"] == {"enabled": True} and prom["prometheusOperator"]["enabled"] is True
    assert not any(
        prom[k]["enabled"] for k in ("alertmanager", "grafana", "prometheus", "kubeStateMetrics", "nodeExporter")
    )
    nack = helm(seed_render, "nack")["values"]
    assert (
        nack["containerSecurityContext"]["capabilities"] == {"drop": ["ALL"]}
        and nack["securityContext"]["runAsNonRoot"] is True
    )


def test_traefik_listens_on_host_ports_of_the_edge_node(seed_render):
    values = helm(seed_render, "traefik")["values"]
    assert (values["ports"]["web"]["hostPort"], values["ports"]["websecure"]["hostPort"]) == (80, 443)
    assert values["nodeSelector"] == {"ingress-ready": "true"}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"} in values[
        "tolerations"
    ]
    assert values["service"]["spec"]["type"] == "ClusterIP"
    assert values["ingressClass"]["name"] == "traefik"
    # A surge pod could never bind the same host ports on the one edge node.
    assert values["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}


def test_edge_namespace_and_class_follow_the_stack_config(render):
    rendered = render(
        {"edge": {"ingressClass": "edge", "controllerNamespace": "edge-system", "clusterIssuer": "b2b-local-ca"}}
    )
    traefik = helm(rendered, "traefik")
    assert traefik["namespace"] == "edge-system" and traefik["values"]["ingressClass"]["name"] == "edge"
    assert "edge-system" in rendered.names("Namespace")


def test_each_namespace_enforces_restricted_except_the_host_port_edge(seed_render):
    levels = {
        n["metadata"]["name"]: n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for n in seed_render.kind("Namespace")
    }
    assert levels == {
        "saas-net": "restricted",
        "cert-manager": "restricted",
        "cnpg-system": "restricted",
        "metrics-server": "restricted",
        "keda": "restricted",
        "monitoring": "restricted",
        "nack": "restricted",
        "traefik": HOST_PORT_LEVEL,
    }
    for ns in seed_render.kind("Namespace"):
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"


def test_barman_plugin_waits_for_cert_manager_and_the_operator_beside_it(seed_render):
    deps = seed_render.run.mocks.depends_on("addons-barman-cloud")
    assert {"addons-cert-manager", "addons-cloudnative-pg", "addons-cnpg-system-namespace"} <= set(deps)
    assert helm(seed_render, "barman-cloud")["namespace"] == helm(seed_render, "cloudnative-pg")["namespace"]


def test_scaled_object_depends_on_the_keda_release(seed_render):
    assert "addons-keda" in seed_render.run.mocks.depends_on("api-scale-scaledobject")


def test_without_addons_nothing_is_installed_and_nothing_waits(render):
    rendered = render({"addons": False})
    assert rendered.run.mocks.of_type("kubernetes:helm.sh/v3:Release") == []
    assert rendered.names("Namespace") == {"saas-net"}
    # No operator release to wait for: only its namespace (tests/test_dependencies.py).
    assert rendered.run.mocks.depends_on("api-scale-scaledobject") == ("saas-net-namespace",)


def test_hpa_needs_no_operator(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: resource(bp, "api-scale")["config"].update(metrica="cpu")))
    assert "addons-keda" not in rendered.run.mocks.depends_on("api-scale-hpa")


def test_crd_groups_map_to_the_releases_that_install_them():
    owners = crd_owners(releases(Settings()))
    for group, key in {
        "cert-manager.io": "cert-manager",
        "postgresql.cnpg.io": "cloudnative-pg",
        "barmancloud.cnpg.io": "barman-cloud",
        "monitoring.coreos.com": "prometheus-operator",
        "jetstream.nats.io": "nack",
        "keda.sh": "keda",
    }.items():
        assert owners[group] == (key,)


def test_requires_returns_the_owning_releases_and_rejects_unknown_groups():
    seen = {}

    def program():
        addons = Addons("addons", AddonsArgs(releases(Settings())))
        seen["keda"] = addons.requires("keda.sh") == (addons.releases["keda"],)
        seen["cnpg"] = addons.requires("postgresql.cnpg.io") == (addons.releases["cloudnative-pg"],)
        with pytest.raises(ValueError, match=r"no add-on installs CRDs of 'keda\.io'; known groups: .*keda\.sh"):
            addons.requires("keda.io")
        seen["raised"] = True

    run_program({}, program=program)
    assert seen == {"keda": True, "cnpg": True, "raised": True}


def test_namespace_gets_the_loosest_level_its_releases_need():
    a = Release("a", "a", "1", "r", "shared", {})
    b = Release("b", "b", "1", "r", "shared", {}, pod_security="privileged")
    assert namespace_levels((a, b)) == {"shared": "privileged"}
    assert namespace_levels((a,)) == {"shared": "restricted"}


def test_cert_manager_runs_where_the_local_ca_secret_is_read():
    (cm,) = [r for r in releases(Settings()) if r.key == "cert-manager"]
    assert cm.namespace == CERT_MANAGER_NAMESPACE
    (nack,) = [r for r in releases(Settings(), None) if r.key == "nack"]
    assert "jetstream" not in nack.values


def traefik_schema():
    """traefik/traefik-helm-chart v41.3.0 traefik/values.schema.json (tests/schemas/SOURCES.md)."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "schemas/traefik/values-41.3.0.json").read_text())


def test_plain_http_redirects_to_https_with_the_charts_own_key(render, seed_render):
    """Chart v41.3.0: `ports.web.http.redirections.entryPoint` (values.yaml), rendered by
    templates/_podtemplate.tpl as `--entryPoints.web.http.redirections.entryPoint.to=:443`,
    `.scheme`, `.permanent`; its schema rejects the pre-v39 `ports.web.redirections`."""
    import jsonschema

    values = helm(seed_render, "traefik")["values"]
    assert values["ports"]["web"]["http"]["redirections"] == {
        "entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}
    }
    assert "websecure" in values["ports"]
    validator = jsonschema.Draft202012Validator(traefik_schema())
    assert list(validator.iter_errors(values)) == []
    old = {**values, "ports": {**values["ports"], "web": {"hostPort": 80, "redirections": {"entryPoint": {}}}}}
    assert any("redirections" in e.message for e in validator.iter_errors(old))


def test_no_redirect_without_tls(render, tmp_path):
    rendered = render(
        {"addons": True},
        blueprint=variant(tmp_path, lambda bp: resource(bp, "wildcard-dns")["config"].update(tls=False)),
    )
    assert "http" not in helm(rendered, "traefik")["values"]["ports"]["web"]


def test_operator_only_means_no_self_service_monitor(seed_render):
    """kube-prometheus-stack-88.5.3 templates/prometheus-operator/servicemonitor.yaml renders
    when `prometheusOperator.serviceMonitor.selfMonitor` (default true in values.yaml)."""
    operator = helm(seed_render, "prometheus-operator")["values"]["prometheusOperator"]
    assert operator["serviceMonitor"] == {"selfMonitor": False}


def test_nack_connects_per_account_not_with_one_global_connection(seed_render):
    """nack chart 0.34.0 (nats-io/k8s tag nack-0.34.0, helm/charts/nack/templates/
    deployment-jetstream-controller.yml): `jetstream.nats.url` set → `-s=<url>`, unset →
    `-crd-connect`; no other value (credentials, nkey) can carry a user and password.
    NACK (nats-io/nack v0.22.4, the newest tag in the snapshot; controllers/ unchanged on main
    through f6dad09, the chart's image is 0.23.0), controllers/jetstream/controller.go: without
    CRDConnect, `Run()` connects once to `-s` with neither user nor password and
    `getAccountOverrides` returns nothing, so `Account.spec.user` is never read; with it, each
    Stream/Consumer connects to the Account's `servers` as its Secret's user.
    """
    values = helm(seed_render, "nack")["values"]
    assert "url" not in values.get("jetstream", {}).get("nats", {})
    # The experimental control-loop mode would also read the Account; legacy mode is the one chosen.
    assert not values.get("jetstream", {}).get("controlLoop")
    assert "-s" not in " ".join(values.get("jetstream", {}).get("additionalArgs", []))


# Deleting a CRD deletes every object of its kinds (the platform's Clusters, Certificates, streams...),
# so no release may take its CRDs with it when uninstalled. How each chart keeps them, at its pin:
CRDS_KEPT = {
    # values `crds.keep` → `helm.sh/resource-policy: keep` (cert-manager v1.21.1
    # deploy/charts/cert-manager/templates/crd-*.yaml).
    "cert-manager": "values",
    # keep unconditionally in the templates (cloudnative-pg/charts cloudnative-pg-v0.29.0 and
    # plugin-barman-cloud-v0.7.0, templates/crds/crds.yaml).
    "cloudnative-pg": "template",
    "barman-cloud": "template",
    # values `crds.additionalAnnotations` (kedacore/charts v2.20.2 keda/templates/crds/*.yaml).
    "keda": "values",
    # The chart's `crds/` directory (traefik-helm-chart v41.3.0 traefik/crds, nats-io/k8s nack-0.34.0
    # helm/charts/nack/crds, kube-prometheus-stack-88.5.3 charts/crds/crds): Helm creates those
    # before the release and outside its manifest (helm v3.20.2 pkg/action/install.go installCRDs),
    # so an uninstall never deletes them, and an upgrade never updates them (docs/changing-a-running-platform.md
    # , CRD upgrades).
    "traefik": "crds-dir",
    "nack": "crds-dir",
    "prometheus-operator": "crds-dir",
}


def test_no_release_deletes_its_crds_when_uninstalled(seed_render):
    assert set(CRDS_KEPT) == {r.key for r in releases(Settings()) if r.crd_groups}
    assert helm(seed_render, "cert-manager")["values"]["crds"]["keep"] is True
    assert helm(seed_render, "keda")["values"]["crds"]["additionalAnnotations"] == {"helm.sh/resource-policy": "keep"}


def test_an_operator_upgrade_updates_postgres_instances_in_place(seed_render):
    config = helm(seed_render, "cloudnative-pg")["values"]["config"]
    assert config == {"data": {"ENABLE_INSTANCE_MANAGER_INPLACE_UPDATES": "true"}}
