from conftest import dev_config, seed

from components.blueprint import parse_blueprint
from components.problems import InvalidInput
from components.settings import cross_check_settings, parse_settings


def problems(config: dict, bp: dict | None = None) -> list[str]:
    try:
        settings = parse_settings(config)
    except InvalidInput as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in cross_check_settings(settings, parse_blueprint(bp or seed()))]


def tenants(*entries) -> dict:
    return {"tenants": [{"plan": "business", "isolation": "schema", **e} for e in entries]}


def test_dev_stack_is_valid():
    settings = parse_settings(dev_config())
    assert [t.id for t in settings.tenants] == ["acme", "globex", "initech"]
    assert settings.protect is False and settings.addons is True
    assert problems(dev_config()) == []


def test_pulumi_string_values_are_decoded():
    settings = parse_settings(
        {
            "protect": "false",
            "tenants": '[{"id": "a1", "plan": "business", "isolation": "rls"}]',
            "sentinel": '{"paranoia": "2"}',
        }
    )
    assert settings.protect is False
    assert settings.tenants[0].isolation == "rls"
    assert settings.sentinel.paranoia == 2


def test_unknown_config_keys_are_errors():
    found = problems({"tenant": [], "edge": {"ingresClass": "x"}})
    # Every layer adds its own section, so only the list's shape is pinned here.
    assert any(p.startswith("tenant: unknown key; accepted: addons, ") and ", tenants" in p for p in found)
    assert any(
        p.startswith(
            "edge.ingresClass: unknown key; accepted: certManagerNamespace, clusterIssuer, controllerNamespace, "
            "customDomainIssuer, ingressClass, localCa"
        )
        for p in found
    )


def test_tenant_fields():
    found = problems({"tenants": [{"id": "Bad_Id", "plan": "free", "isolation": "db"}]})
    assert "tenants[0].plan: must be 'business' or 'enterprise' (got 'free')" in found
    assert "tenants[0].isolation: must be 'schema' or 'rls' (got 'db')" in found
    assert any(p.startswith("tenants[0].id: 'Bad_Id' is not a DNS-1123 label") for p in found)


def test_tenant_ids_unique_and_not_reserved():
    found = problems(tenants({"id": "acme"}, {"id": "acme"}, {"id": "www"}, {"id": "admin-ui"}))
    assert "tenants[1].id: duplicate tenant id 'acme' (also tenants[0])" in found
    assert "tenants[2].id: 'www' is reserved (platform hosts and resource names cannot be tenant ids)" in found
    assert "tenants[3].id: 'admin-ui' is reserved (platform hosts and resource names cannot be tenant ids)" in found


def test_login_version_is_a_non_negative_integer_for_enterprise_tenants():
    assert problems(tenants({"id": "a1", "plan": "enterprise", "loginVersion": "2"})) == []
    found = problems(tenants({"id": "a1", "plan": "enterprise", "loginVersion": -1}))
    assert any(p.startswith("tenants[0].loginVersion:") and "-1" in p for p in found), found
    assert problems(tenants({"id": "b1", "loginVersion": 1})) == [
        (
            "tenants[0].loginVersion: 1 rotates an enterprise tenant's own database login; 'b1' is business (it logs "
            "in "
            "as the shared router): remove it or make the tenant enterprise"
        )
    ]


def test_custom_domains_cannot_collide_or_sit_under_the_platform():
    found = problems(
        tenants(
            {"id": "a1", "domains": ["portal.acme.com"]},
            {"id": "b1", "domains": ["portal.acme.com", "x.portal.acme.com", "b1.app.acme.io"]},
        )
    )
    assert "tenants[1].domains[0]: 'portal.acme.com' is already claimed by tenant 'a1' (tenants[0].domains[0])" in found
    assert (
        "tenants[1].domains[1]: 'x.portal.acme.com' overlaps 'portal.acme.com', claimed by tenant 'a1' "
        "(tenants[0].domains[0])" in found
    )
    assert (
        "tenants[1].domains[2]: 'b1.app.acme.io' is under the platform's own domain 'app.acme.io'; tenants get "
        "<id>.app.acme.io already" in found
    )


def test_a_domain_overlapping_several_claims_names_each_in_claim_order():
    found = problems(
        tenants(
            {"id": "a1", "domains": ["x.portal.acme.com"]},
            {"id": "b1", "domains": ["y.portal.acme.com", "other.test"]},
            {"id": "c1", "domains": ["portal.acme.com"]},
        )
    )
    assert found == [
        (
            "tenants[2].domains[0]: 'portal.acme.com' overlaps 'x.portal.acme.com', claimed by tenant 'a1' "
            "(tenants[0].domains[0])"
        ),
        (
            "tenants[2].domains[0]: 'portal.acme.com' overlaps 'y.portal.acme.com', claimed by tenant 'b1' "
            "(tenants[1].domains[0])"
        ),
    ]


def test_custom_domains_are_plain_hosts():
    assert problems(tenants({"id": "c1", "domains": ["*.c1.com"]})) == [
        "tenants[0].domains[0]: '*.c1.com' is not a valid host name; expected a host like 'portal.customer.com'"
    ]


def test_purging_an_active_tenant_is_refused():
    found = problems({**tenants({"id": "a1"}), "purgeTenants": ["a1", "gone"]})
    assert found == ["purgeTenants[0]: 'a1' is still an active tenant; remove it from tenants before purging its data"]


def test_compute_and_image_keys_must_exist():
    found = problems({"computes": {"tenant-apii": {"image": "x:1"}}, "images": {"nginx": "nginx:1"}})
    assert (
        "computes.tenant-apii: no compute named 'tenant-apii' in the blueprint (computes: admin-ui, tenant-api)"
        in found
    )
    assert any(p.startswith("images.nginx: unknown image key; accepted: ") for p in found)


def test_requests_autoscaling_needs_prometheus():
    bp = seed()
    bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] != "insight"]
    assert problems({}, bp) == [
        (
            "recursos[8].config.metrica: 'requests' needs Prometheus: add an insight resource or set "
            "autoscale.prometheusUrl"
        )
    ]
    assert problems({"autoscale": {"prometheusUrl": "http://prom:9090"}}, bp) == []


def test_edge_settings_are_kubernetes_names():
    found = problems(
        {
            "edge": {
                "clusterIssuer": "Lets_Encrypt",
                "customDomainIssuer": "",
                "ingressClass": "traefik.",
                "localCa": "maybe",
                "certManagerNamespace": "cert.manager",
            }
        }
    )
    assert (
        "edge.clusterIssuer: 'Lets_Encrypt' is not a Kubernetes object name (lowercase letters, digits, '-' and '.', "
        "at most 253 characters)" in found
    )
    assert (
        "edge.customDomainIssuer: '' is not a Kubernetes object name (lowercase letters, digits, '-' and '.', at "
        "most 253 characters)" in found
    )
    assert (
        "edge.ingressClass: 'traefik.' is not a Kubernetes object name (lowercase letters, digits, '-' and '.', at "
        "most 253 characters)" in found
    )
    assert "edge.localCa: must be true or false (got 'maybe')" in found
    assert any(p.startswith("edge.certManagerNamespace: 'cert.manager' is not a DNS-1123 label") for p in found)
    assert len(found) == 5


def test_edge_defaults():
    edge = parse_settings({}).edge
    assert (
        edge.ingress_class,
        edge.cluster_issuer,
        edge.custom_domain_issuer,
        edge.local_ca,
        edge.cert_manager_namespace,
    ) == ("traefik", "b2b-local-ca", None, False, "cert-manager")
    assert parse_settings(dev_config()).edge.local_ca is True
