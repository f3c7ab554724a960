import json

from conftest import dev_config, resource, seed

from components.blueprint import load_blueprint
from components.contracts import LocalCaRef, Refs
from components.outputs import curl_example, endpoints, stack_outputs, tenant_hosts, trust_ca_command, web_hosts
from components.settings import parse_settings


def inputs(edit=None, **config):
    bp = seed()
    if edit:
        edit(bp)
    settings = dev_config() | config
    settings.pop("blueprint")
    return load_blueprint(json.dumps(bp)), parse_settings(settings)


def test_tenant_urls_come_from_the_gateway_domain_and_tenants():
    bp, settings = inputs()
    out = stack_outputs(bp, settings, "kind-b2b-platform")
    assert out["tenantUrls"] == {
        "acme": ["https://acme.app.acme.io", "https://portal.acme-corp.test"],
        "globex": ["https://globex.app.acme.io"],
        "initech": ["https://initech.app.acme.io"],
    }
    assert out["adminUrls"] == {"admin-ui": "https://admin-ui.app.acme.io"}
    assert out["hostsEntry"].split() == [
        "127.0.0.1",
        "acme.app.acme.io",
        "portal.acme-corp.test",
        "globex.app.acme.io",
        "initech.app.acme.io",
        "admin-ui.app.acme.io",
    ]


def test_plain_http_without_tls_and_no_ca_to_trust():
    bp, settings = inputs(lambda b: resource(b, "wildcard-dns")["config"].update(tls=False))
    out = stack_outputs(bp, settings, None)
    assert out["tenantUrls"]["globex"] == ["http://globex.app.acme.io"]
    assert "trustLocalCa" not in out
    assert out["tryIt"] == "curl --resolve acme.app.acme.io:80:127.0.0.1 http://acme.app.acme.io/"


def test_local_ca_trust_command_reads_the_ca_issuer_secret():
    bp, settings = inputs()
    out = stack_outputs(bp, settings, "kind-b2b-platform")
    assert out["trustLocalCa"] == (
        "kubectl --context kind-b2b-platform -n cert-manager get secret b2b-local-ca "
        "-o jsonpath='{.data.ca\\.crt}' | base64 -d > b2b-local-ca.crt"
    )
    assert (
        out["tryIt"]
        == "curl --cacert b2b-local-ca.crt --resolve acme.app.acme.io:443:127.0.0.1 https://acme.app.acme.io/"
    )
    assert trust_ca_command(LocalCaRef("corp-ca", "certs"), None).startswith("kubectl -n certs get secret corp-ca ")


def test_a_stack_without_addons_has_no_local_ca_and_no_local_hints():
    bp, settings = inputs(addons=False, edge={"localCa": False})
    out = stack_outputs(bp, settings, None)
    assert set(out) == {"tenantUrls", "adminUrls", "endpoints"}


def test_the_trust_command_follows_the_local_ca_not_the_addons():
    bp, settings = inputs(addons=False)  # e.g. cert-manager already on the cluster, CA chain from this stack
    assert "trustLocalCa" in stack_outputs(bp, settings, None)


def test_endpoints_name_services_and_the_secrets_holding_credentials():
    bp, _ = inputs()
    out = endpoints(Refs.of(bp), "kind-b2b-platform")
    assert out["database"] == {
        "host": "platform-db-pooler-rw.saas-net.svc.cluster.local",
        "port": 5432,
        "credentialsSecret": "saas-net/platform-db-app",
        "uriCommand": (
            "kubectl --context kind-b2b-platform -n saas-net get secret platform-db-app "
            "-o jsonpath='{.data.uri}' | base64 -d"
        ),
    }
    assert out["broker"] == {
        "url": "nats://lifecycle.saas-net.svc.cluster.local:4222",
        "credentialsSecret": "saas-net/lifecycle-api",
        "inboxPrefix": "_INBOX_api",
    }
    assert out["objectStore"]["endpoint"] == "http://tenant-files.saas-net.svc.cluster.local:8333"
    assert (
        out["objectStore"]["credentialsSecret"] == "saas-net/tenant-files-s3-app"
    )  # the computes' key, not the backup path's
    assert out["prometheus"] == {"url": "http://prometheus-operated.saas-net.svc.cluster.local:9090"}
    # Credentials are never values in the outputs, only where to read them.
    assert "password" not in json.dumps(out)


def test_nothing_is_advertised_for_layers_the_blueprint_lacks():
    keep = ("fabric", "compute", "autoscale")
    bp, settings = inputs(
        lambda b: b.update(recursos=[r for r in b["recursos"] if r["tipo"] in keep]),
        tenants=[],
        autoscale={"prometheusUrl": "http://prom:9090"},
    )
    out = stack_outputs(bp, settings, None)
    assert out == {"tenantUrls": {}, "adminUrls": {}, "endpoints": {}}


def test_hosts_need_a_gateway():
    bp, settings = inputs(lambda b: b["recursos"].remove(resource(b, "wildcard-dns")), tenants=[])
    assert tenant_hosts(bp, settings) == {} and web_hosts(bp) == {}
    assert (
        curl_example("a.example.io", "https", None) == "curl --resolve a.example.io:443:127.0.0.1 https://a.example.io/"
    )


def test_the_program_exports_them(seed_render):
    exports = seed_render.run.exports
    bp, settings = inputs()
    for key, value in stack_outputs(bp, settings, None).items():
        assert exports[key] == value
