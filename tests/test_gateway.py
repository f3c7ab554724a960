import pytest
from conftest import Rendered, dev_config, resource, seed, variant

from components import meta
from components.blueprint import parse_blueprint
from components.contracts import Refs
from components.gateway import ACME_SOLVER_LABEL, GatewayArgs, platform_ingress_spec
from components.problems import InvalidInput
from components.render import run_program
from components.settings import cross_check_settings, parse_settings


def backends(ingress: dict) -> dict[str, str]:
    return {r["host"]: r["http"]["paths"][0]["backend"]["service"]["name"] for r in ingress["spec"]["rules"]}


def tenant(tid: str, *domains) -> dict:
    return {"id": tid, "plan": "business", "isolation": "schema", "domains": list(domains)}


def test_wildcard_goes_through_the_waf_and_web_computes_get_their_host(seed_render):
    ingress = seed_render.get("Ingress", "wildcard-dns")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert backends(ingress) == {"admin-ui.app.acme.io": "admin-ui", "*.app.acme.io": "edge-waf"}
    for rule in ingress["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert (path["path"], path["pathType"], path["backend"]["service"]["port"]) == ("/", "Prefix", {"number": 80})


def test_chain_ingress_to_waf_to_api(seed_render):
    """Ingress `*.<base>` → Service edge-waf:80 → WAF pod :8080 → BACKEND tenant-api:80 → API pod."""
    assert backends(seed_render.get("Ingress", "wildcard-dns"))["*.app.acme.io"] == "edge-waf"
    waf_svc = seed_render.get("Service", "edge-waf")["spec"]["ports"][0]
    assert (waf_svc["port"], waf_svc["targetPort"]) == (80, "http")
    waf = seed_render.get("Deployment", "edge-waf")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "BACKEND", "value": "http://tenant-api.saas-net.svc.cluster.local:80"} in waf["env"]
    assert seed_render.get("Service", "tenant-api")["spec"]["ports"][0]["port"] == 80
    assert (
        seed_render.get("NetworkPolicy", "allow-edge-waf-to-tenant-api")["spec"]["podSelector"]["matchLabels"][
            "app.kubernetes.io/name"
        ]
        == "tenant-api"
    )


def test_without_sentinel_the_wildcard_goes_to_the_api(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp["recursos"].remove(resource(bp, "edge-waf"))))
    assert backends(rendered.get("Ingress", "wildcard-dns"))["*.app.acme.io"] == "tenant-api"
    assert backends(rendered.get("Ingress", "wildcard-dns-acme")) == {"portal.acme-corp.test": "tenant-api"}


def test_a_sentinel_in_front_of_a_web_compute_fronts_its_host_too():
    raw = seed()
    raw["recursos"].append(
        {"tipo": "sentinel", "nome": "ui-waf", "config": {"modo": "detectar", "alvo_recurso_id": "admin-ui"}}
    )
    bp = parse_blueprint(raw)
    args = GatewayArgs.of(bp.one("gateway"), bp, parse_settings({}), Refs.of(bp))
    assert backends({"spec": platform_ingress_spec(args)}) == {
        "admin-ui.app.acme.io": "ui-waf",
        "*.app.acme.io": "edge-waf",
    }


def test_no_ingress_nginx_annotations(seed_render):
    for o in seed_render.objects:
        assert not any("nginx.ingress.kubernetes.io" in k for k in o["metadata"].get("annotations", {})), o["metadata"][
            "name"
        ]


def test_wildcard_certificate_and_tls_secret(seed_render):
    ingress = seed_render.get("Ingress", "wildcard-dns")
    assert ingress["spec"]["tls"] == [{"hosts": ["*.app.acme.io", "app.acme.io"], "secretName": "wildcard-dns-tls"}]
    cert = seed_render.get("Certificate", "wildcard-dns")
    assert cert["metadata"]["namespace"] == "saas-net"  # beside the Ingress that reads its secret
    assert cert["spec"]["secretName"] == "wildcard-dns-tls"
    assert cert["spec"]["dnsNames"] == ["*.app.acme.io", "app.acme.io"]
    assert cert["spec"]["issuerRef"] == {"name": "b2b-local-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


def test_custom_domains_get_their_own_ingress_and_certificate(seed_render):
    ingress = seed_render.get("Ingress", "wildcard-dns-acme")
    assert ingress["metadata"]["labels"]["b2b-platform.io/tenant"] == "acme"
    assert backends(ingress) == {"portal.acme-corp.test": "edge-waf"}
    assert ingress["spec"]["tls"] == [{"hosts": ["portal.acme-corp.test"], "secretName": "wildcard-dns-acme-tls"}]
    # cert-manager's ingress-shim creates the Certificate (named after secretName, dnsNames from
    # the tls hosts) with the same issuer and private key as the platform's own Certificate.
    assert ingress["metadata"]["annotations"] == {
        "cert-manager.io/cluster-issuer": "b2b-local-ca",
        "cert-manager.io/private-key-algorithm": "ECDSA",
        "cert-manager.io/private-key-size": "256",
        "cert-manager.io/private-key-rotation-policy": "Always",
    }
    wildcard_key = seed_render.get("Certificate", "wildcard-dns")["spec"]["privateKey"]
    assert {
        k.rsplit("private-key-", 1)[-1]: v for k, v in ingress["metadata"]["annotations"].items() if "private-key" in k
    } == {
        "algorithm": wildcard_key["algorithm"],
        "size": str(wildcard_key["size"]),
        "rotation-policy": wildcard_key["rotationPolicy"],
    }
    assert "wildcard-dns-acme" not in seed_render.names("Certificate")
    # Tenants without custom domains have nothing of their own on the edge.
    assert seed_render.names("Ingress") == {"wildcard-dns", "wildcard-dns-acme"}


def test_custom_domain_issuer_signs_only_custom_domains(render):
    rendered = render({"edge": {"clusterIssuer": "letsencrypt-dns01", "customDomainIssuer": "letsencrypt-http01"}})
    assert rendered.get("Certificate", "wildcard-dns")["spec"]["issuerRef"]["name"] == "letsencrypt-dns01"
    assert (
        rendered.get("Ingress", "wildcard-dns-acme")["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        == "letsencrypt-http01"
    )
    assert "cert-manager.io/cluster-issuer" not in rendered.get("Ingress", "wildcard-dns")["metadata"].get(
        "annotations", {}
    )
    assert rendered.kind("ClusterIssuer") == []  # production issuers are the cluster's, not the program's
    # The edge controller must reach cert-manager's HTTP-01 solver pods in the fabric.
    solver = rendered.get("NetworkPolicy", "allow-edge-to-acme-solver")["spec"]
    assert solver["podSelector"] == {"matchLabels": ACME_SOLVER_LABEL}
    assert solver["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}}],
            "ports": [{"protocol": "TCP", "port": 8089}],
        }
    ]


def test_no_solver_policy_without_an_acme_issuer(seed_render):
    assert "allow-edge-to-acme-solver" not in seed_render.names("NetworkPolicy")
    assert not [w for w in seed_render.run.warnings if "HTTP-01" in w]


def test_http01_issuer_must_not_use_nodeport(render):
    """cert-manager v1.21.1 pkg/issuer/acme/http/service.go: the solver Service is `NodePort`
    unless `http01.ingress.serviceType` is set; the fabric's ResourceQuota (services.nodeports: 0)
    refuses it in the namespace where the solver runs. The issuer is the cluster's, so the
    program says what it needs whenever it relies on one."""
    rendered = render({"edge": {"clusterIssuer": "letsencrypt-dns01", "customDomainIssuer": "letsencrypt-http01"}})
    (quota,) = rendered.kind("ResourceQuota")
    assert quota["spec"]["hard"]["services.nodeports"] == "0"
    (warning,) = [w for w in rendered.run.warnings if "HTTP-01" in w]
    assert "serviceType: ClusterIP" in warning and "'letsencrypt-http01'" in warning and "NodePort" in warning


def test_readme_http01_issuer_sets_cluster_ip():
    """The Gateway page's issuer example works as written: its HTTP-01 solver asks for ClusterIP."""
    import re
    from pathlib import Path

    import yaml

    section = (Path(__file__).parent.parent / "docs" / "layers" / "gateway.md").read_text()
    docs = [d for block in re.findall(r"```yaml\n(.*?)```", section, re.S) for d in yaml.safe_load_all(block)]
    (http01,) = [d for d in docs if d["metadata"]["name"] == "letsencrypt-http01"]
    (solver,) = http01["spec"]["acme"]["solvers"]
    assert solver["http01"]["ingress"] == {"ingressClassName": "traefik", "serviceType": "ClusterIP"}


def test_local_ca_chain(seed_render):
    root = seed_render.get("ClusterIssuer", "b2b-local-ca-selfsigned")
    assert root["spec"] == {"selfSigned": {}} and "namespace" not in root["metadata"]
    ca = seed_render.get("Certificate", "b2b-local-ca")
    assert ca["metadata"]["namespace"] == "cert-manager"
    assert ca["spec"]["isCA"] is True
    assert ca["spec"]["issuerRef"] == {
        "name": "b2b-local-ca-selfsigned",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    issuer = seed_render.get("ClusterIssuer", "b2b-local-ca")
    assert issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}
    assert seed_render.run.exports["localCa"] == {
        "namespace": "cert-manager",
        "name": ca["spec"]["secretName"],
        "key": "ca.crt",
    }


def test_local_ca_namespace_and_issuer_name_follow_settings(render):
    rendered = render({"edge": {"clusterIssuer": "kind-ca", "localCa": True, "certManagerNamespace": "certs"}})
    assert rendered.get("Certificate", "kind-ca")["metadata"]["namespace"] == "certs"
    assert rendered.names("ClusterIssuer") == {"kind-ca", "kind-ca-selfsigned"}
    assert rendered.get("Certificate", "wildcard-dns")["spec"]["issuerRef"]["name"] == "kind-ca"


def test_without_local_ca_no_issuers_are_created(render):
    rendered = render({"edge": {"clusterIssuer": "letsencrypt-dns01"}})
    assert rendered.kind("ClusterIssuer") == []
    assert "b2b-local-ca" not in rendered.names("Certificate")
    assert rendered.run.exports["localCa"] is None


def test_tls_false_is_plain_http_with_a_warning(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: resource(bp, "wildcard-dns")["config"].update(tls=False)))
    assert rendered.kind("Certificate") == [] and rendered.kind("ClusterIssuer") == []
    for ingress in rendered.kind("Ingress"):
        assert "tls" not in ingress["spec"]
    assert backends(rendered.get("Ingress", "wildcard-dns-acme")) == {"portal.acme-corp.test": "edge-waf"}
    (warning,) = [w for w in rendered.run.warnings if "tls is false" in w]
    assert "plain HTTP" in warning and "*.app.acme.io" in warning


def test_plain_http_ingresses_say_so_to_the_policy_pack(render, seed_render, tmp_path):
    """policy/validators.py ingress_tls refuses an Ingress host without a TLS entry unless the
    Ingress carries b2b-platform.io/tls: "false"; every Ingress of a `tls: false` gateway (the
    platform's, a tenant's custom domains, a public archive's) carries it, and no TLS one does."""
    from policy import validators

    def plain_and_public(bp):
        resource(bp, "wildcard-dns")["config"]["tls"] = False
        resource(bp, "tenant-files")["config"]["publico"] = True

    plain = render(blueprint=variant(tmp_path, plain_and_public))
    ingresses = plain.kind("Ingress")
    assert {i["metadata"]["name"] for i in ingresses} >= {"wildcard-dns", "wildcard-dns-acme", "tenant-files"}
    for ingress in ingresses:
        assert ingress["metadata"]["annotations"][meta.TLS_ANNOTATION] == "false"
        assert validators.ingress_tls(ingress) == []
    for ingress in seed_render.kind("Ingress"):
        assert meta.TLS_ANNOTATION not in ingress["metadata"].get("annotations", {})
        assert validators.ingress_tls(ingress) == []


def test_reserved_hosts_are_not_tenants():
    settings = parse_settings({"tenants": [tenant("admin-ui"), tenant("www"), tenant("mta-sts")]})
    found = [str(p) for p in cross_check_settings(settings, parse_blueprint(seed()))]
    assert len(found) == 3 and all("is reserved" in p for p in found)


def long_base(labels: int) -> str:
    return ".".join(["a" * 60] * labels + ["b" * 30]) + ".io"


def test_overlong_tenant_hosts_rejected():
    raw = seed()
    base = long_base(3)  # 216 characters: admin-ui.<base> still fits
    resource(raw, "wildcard-dns")["config"]["dominio"] = f"*.{base}"
    found = [
        str(p) for p in cross_check_settings(parse_settings({"tenants": [tenant("t" * 40)]}), parse_blueprint(raw))
    ]
    assert found == [f"tenants[0].id: host {'t' * 40}.{base} would be longer than 253 characters; use a shorter id"]


def test_overlong_web_hosts_rejected():
    raw = seed()
    base = long_base(3).replace("b" * 30, "b" * 59)  # 245 characters
    resource(raw, "wildcard-dns")["config"]["dominio"] = f"*.{base}"
    with pytest.raises(InvalidInput) as info:
        parse_blueprint(raw)
    assert [str(p) for p in info.value.problems] == [
        f"recursos[2].nome: web host admin-ui.{base} would be longer than 253 characters; use a shorter name"
    ]


def test_one_letter_web_hosts_rejected():
    """Traefik (v3.7.9 pkg/provider/kubernetes/ingress/kubernetes.go) turns an Ingress rule into
    Host(`<host>`) && PathPrefix(`/`) and ranks routers by rule length (pkg/muxer/http/mux.go
    GetRulePriority: len(rule)): `a.<base>` is exactly as long as `*.<base>`, a tie either router wins."""
    raw = seed()
    resource(raw, "admin-ui")["nome"] = "a"
    with pytest.raises(InvalidInput) as info:
        parse_blueprint(raw)
    assert [str(p) for p in info.value.problems] == [
        (
            "recursos[2].nome: 'a': web host a.app.acme.io would tie with the tenant wildcard *.app.acme.io in the "
            "edge "
            "controller's rule-length priority; use a name of at least two characters"
        )
    ]
    assert len('Host("a.app.acme.io") && PathPrefix("/")') == len('Host("*.app.acme.io") && PathPrefix("/")')


@pytest.fixture(scope="module")
def counts():
    """Registered resources (components included) for different tenant lists."""

    def count(tenants: list) -> int:
        return len(Rendered(run_program(dev_config() | {"tenants": tenants})).run.mocks.resources)

    return count


def test_tenants_without_domains_add_no_resources(counts):
    assert counts([tenant(f"t{i}") for i in range(50)]) == counts([])


def test_a_tenant_with_domains_adds_one_ingress(counts):
    base = counts([tenant("t1")])
    assert counts([tenant("t1", "a.t1.com", "b.t1.com", "t1.example.org")]) == base + 1
    assert counts([tenant("t1", "a.t1.com"), tenant("t2", "t2.com")]) == base + 2


def test_one_letter_archive_host_rejected():
    bp = parse_blueprint(seed())
    problems = cross_check_settings(parse_settings({"archive": {"publicHost": "f"}}), bp)
    assert [p.path for p in problems] == ["archive.publicHost"] and "tie" in problems[0].message


def test_without_a_sentinel_the_api_must_resolve_tenants_and_up_says_so(render, seed_render, tmp_path):
    assert not [w for w in seed_render.run.warnings if "resolve tenants" in w]
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp["recursos"].remove(resource(bp, "edge-waf"))))
    (warning,) = [w for w in rendered.run.warnings if "does not resolve tenants" in w]
    assert "*.app.acme.io" in warning and "the API must map Host to tenant itself" in warning


# --- changing the base domain (docs/layers/gateway.md, changing the domain) -------------------------


def migrated(render, tmp_path) -> Rendered:
    """The dev stack moved from app.acme.io to app.initech.io, still serving the old domain."""

    def move(bp):
        resource(bp, "wildcard-dns")["config"]["dominio"] = "*.app.initech.io"

    edge = {**dev_config()["edge"], "previousDomains": ["app.acme.io"]}
    return render({"edge": edge}, blueprint=variant(tmp_path, move))


def test_a_previous_domain_keeps_routing_and_certifying_tenants(render, tmp_path):
    rendered = migrated(render, tmp_path)
    ingress = rendered.get("Ingress", "wildcard-dns")
    # Tenants under both; web hosts (the admin UI, its SSO callback) move at once.
    assert backends(ingress) == {
        "admin-ui.app.initech.io": "admin-ui",
        "*.app.initech.io": "edge-waf",
        "*.app.acme.io": "edge-waf",
    }
    names = ["*.app.initech.io", "app.initech.io", "*.app.acme.io", "app.acme.io"]
    assert ingress["spec"]["tls"] == [{"hosts": names, "secretName": "wildcard-dns-tls"}]
    assert rendered.get("Certificate", "wildcard-dns")["spec"]["dnsNames"] == names
    # The WAF resolves the old hosts to the same tenants; custom domains are untouched.
    server = rendered.get("ConfigMap", "edge-waf")["data"]["default.conf.template"]
    for tenant in ("acme", "globex", "initech"):
        assert f"    {tenant}.app.acme.io {tenant};" in server and f"    {tenant}.app.initech.io {tenant};" in server
    assert "    portal.acme-corp.test acme;" in server
    assert rendered.run.exports["tenantUrls"]["acme"] == [
        "https://acme.app.initech.io",
        "https://portal.acme-corp.test",
        "https://acme.app.acme.io",
    ]


@pytest.mark.parametrize(
    "edge,found",
    [
        (
            {"previousDomains": ["app.acme.io"]},
            (
                "edge.previousDomains[0]: 'app.acme.io' is the gateway's current domain; list only the base domains it "
                "served before"
            ),
        ),
        (
            {"previousDomains": ["app.old.io", "app.old.io"]},
            "edge.previousDomains[1]: duplicate domain 'app.old.io' (also edge.previousDomains[0])",
        ),
        (
            {"previousDomains": ["*.app.old.io"]},
            (
                "edge.previousDomains[0]: '*.app.old.io' is not a base domain; expected one like 'app.acme.io' (a "
                "gateway dominio without '*.')"
            ),
        ),
    ],
)
def test_bad_previous_domains_are_named(edge, found):
    try:
        settings = parse_settings({"edge": edge})
    except InvalidInput as exc:
        assert [str(p) for p in exc.problems] == [found]
        return
    assert [str(p) for p in cross_check_settings(settings, parse_blueprint(seed()))] == [found]


def test_previous_domains_need_a_gateway_and_keep_custom_domains_out(tmp_path):
    def no_gateway(bp):
        bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] not in ("gateway", "sso")]

    raw = seed()
    no_gateway(raw)
    settings = parse_settings({"edge": {"previousDomains": ["app.old.io"]}})
    assert [str(p) for p in cross_check_settings(settings, parse_blueprint(raw))] == [
        "edge.previousDomains: previous base domains need a gateway resource in the blueprint"
    ]
    settings = parse_settings(
        {"edge": {"previousDomains": ["app.old.io"]}, "tenants": [tenant("a1", "shop.app.old.io")]}
    )
    assert [str(p) for p in cross_check_settings(settings, parse_blueprint(seed()))] == [
        (
            "tenants[0].domains[0]: 'shop.app.old.io' is under the platform's own domain 'app.old.io'; tenants get "
            "<id>.app.old.io already"
        )
    ]
