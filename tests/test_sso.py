"""SSO-ready admin: the `oidc` settings and the AdminSso login proxy in front of web computes."""

import base64
import subprocess
import sys

import pulumi
import pytest
from conftest import ROOT, SEED, Rendered, dev_config, resource, seed, variant
from schema_check import validate
from test_gateway import backends
from test_sentinel import ingress_rules_for

from components import meta
from components.blueprint import parse_blueprint
from components.contracts import Refs
from components.images import IMAGES
from components.podsecurity import restricted_violations
from components.problems import InvalidInput
from components.render import SECRET_SIG, RecordingMocks, run_program
from components.settings import cross_check_settings, parse_settings
from components.sso import AdminSsoArgs, cookie_secret, deployment_spec, idp_policy_spec, proxy_env

SECRET = "s3cr3t-client-value"
OIDC = {
    "issuerUrl": "https://login.acme.io/realms/admin",
    "clientId": "b2b-admin",
    "clientSecret": SECRET,
    "emailDomains": ["acme.io"],
}


def oidc(**changes) -> dict:
    return {"oidc": {**OIDC, **changes}}


def problems(config: dict, bp: dict | None = None, secret: bool = True) -> list[str]:
    try:
        settings = parse_settings(config, secret_keys=("oidc",) if secret else ())
    except InvalidInput as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in cross_check_settings(settings, parse_blueprint(bp or seed()))]


def args_for(config: dict | None = None, edit=None) -> AdminSsoArgs:
    raw = seed()
    if edit:
        edit(raw)
    bp = parse_blueprint(raw)
    refs = Refs.of(bp, sso=True)
    return AdminSsoArgs.of(refs.ssos[0], bp, parse_settings(config or oidc(), secret_keys=("oidc",)), refs)


def env(args: AdminSsoArgs) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in proxy_env(args)}


def labels(rendered, deployment: str) -> dict:
    return rendered.get("Deployment", deployment)["spec"]["template"]["metadata"]["labels"]


@pytest.fixture(scope="module")
def sso_render():
    return Rendered(run_program(dev_config() | oidc(allowedGroups=["platform-admins"]), secret_keys=("oidc",)))


# --- settings -------------------------------------------------------------------------


def test_valid_oidc_settings():
    settings = parse_settings(
        oidc(issuerUrl="https://idp.acme.io:8443/realms/x", allowedGroups=["/admins"]), secret_keys=("oidc",)
    )
    assert settings.oidc.issuer_port == 8443
    assert settings.oidc.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)  # masked wherever settings are printed
    assert problems(oidc()) == []


@pytest.mark.parametrize(
    "url,message",
    [
        ("login.acme.io", "'login.acme.io' is not an https URL with a host"),
        ("https://", "'https://' is not an https URL with a host"),
        ("https://login.acme.io:99999/", "'https://login.acme.io:99999/' is not a URL"),
        ("https://login acme.io/", "'login acme.io' is not a valid host name"),
        ("https://login.acme.io/realms/x?tenant=1", "an issuer URL has no query, fragment or credentials"),
        ("https://user:pw@login.acme.io/", "an issuer URL has no query, fragment or credentials"),
    ],
)
def test_bad_issuer_url(url, message):
    (found,) = problems(oidc(issuerUrl=url))
    assert found.startswith(f"oidc.issuerUrl: {url!r}") and message in found


def test_program_refuses_a_plain_client_secret_before_any_resource():
    mocks = RecordingMocks()
    with pytest.raises(pulumi.RunError) as info:
        run_program(dev_config() | oidc(), mocks=mocks)
    assert "oidc.clientSecret: must be a Pulumi secret" in str(info.value)
    assert SECRET not in str(info.value)
    assert mocks.resources == []


def test_http_issuer_is_rejected():
    assert problems(oidc(issuerUrl="http://login.acme.io/realms/admin")) == [
        (
            "oidc.issuerUrl: 'http://login.acme.io/realms/admin' uses http; the issuer must be an https URL (the IdP's "
            "keys and the client secret travel over it)"
        )
    ]


@pytest.mark.parametrize("key", ["clientId", "clientSecret", "issuerUrl"])
def test_required_keys(key):
    config = oidc()
    del config["oidc"][key]
    assert problems(config) == [f"oidc.{key}: required key is missing"]


def test_blank_client_id_and_secret():
    assert problems(oidc(clientId="")) == ["oidc.clientId: '' is not an OAuth client id (non-empty, no spaces)"]
    assert problems(oidc(clientSecret="")) == ["oidc.clientSecret: must not be empty"]


def test_client_secret_must_be_a_pulumi_secret():
    assert problems(oidc(), secret=False) == [
        (
            "oidc.clientSecret: must be a Pulumi secret, not plain text in the stack file: "
            "pulumi config set --secret --path 'b2b-platform:oidc.clientSecret' <secret>"
        )
    ]


@pytest.mark.parametrize(
    "domain,message",
    [
        ("@acme.io", "'@acme.io' is not an email domain; write the part after '@'"),
        ("acme", "'acme' is not an email domain; expected a domain like 'acme.io', or '*'"),
        ("*.acme.io", "'*.acme.io' is not an email domain; expected a domain like 'acme.io'"),
    ],
)
def test_bad_email_domain(domain, message):
    (found,) = problems(oidc(emailDomains=["acme.io", domain]))
    assert found.startswith("oidc.emailDomains[1]: " + message)


def test_someone_must_be_excluded():
    assert problems(oidc(emailDomains=[])) == [
        (
            "oidc.emailDomains: set emailDomains and/or allowedGroups: who may sign in to the admin UI ('*' admits "
            "every "
            "verified email of the IdP)"
        )
    ]
    assert problems(oidc(emailDomains=[], allowedGroups=["ops,dev"])) == [
        "oidc.allowedGroups[0]: 'ops,dev' is not a group name (non-empty, no ',')"
    ]
    assert problems(oidc(emailDomains=["*"])) == []


def test_oidc_needs_a_web_compute_behind_a_gateway():
    no_web = seed()
    no_web["recursos"].remove(resource(no_web, "admin-ui"))
    assert problems(oidc(), no_web) == [
        "oidc: the blueprint has no web compute for the login proxy to protect; remove oidc"
    ]
    no_gateway = seed()
    no_gateway["recursos"].remove(resource(no_gateway, "wildcard-dns"))
    assert problems(oidc(), no_gateway) == [
        (
            "oidc: the login proxy needs a gateway resource: its redirect URL is <web compute>.<gateway base "
            "domain>/oauth2/callback"
        )
    ]


def test_proxy_name_cannot_be_taken_by_a_resource():
    bp = seed()
    bp["recursos"].append({"tipo": "compute", "nome": "admin-ui-sso", "config": {"subtipo": "web", "replicas_min": 1}})
    assert (
        "oidc: resource name 'admin-ui-sso' is taken; the login proxy of web compute 'admin-ui' is named so"
        in problems(oidc(), bp)
    )


# --- routing contract -----------------------------------------------------------------


def test_refs_put_the_proxy_between_the_edge_and_web_computes():
    bp = parse_blueprint(seed())
    assert Refs.of(bp).ssos == ()
    refs = Refs.of(bp, sso=True)
    (sso,) = refs.ssos
    assert (sso.name, sso.target, sso.upstream) == (
        "admin-ui-sso",
        "admin-ui",
        "http://admin-ui.saas-net.svc.cluster.local:80",
    )
    assert refs.edge_service("admin-ui") == "admin-ui-sso"
    assert refs.edge_service("tenant-api") == "edge-waf"  # api computes never get a proxy
    assert refs.wafs[0].via is None


def test_a_waf_on_a_web_compute_stays_outermost_and_forwards_to_the_proxy():
    raw = seed()
    raw["recursos"].append(
        {"tipo": "sentinel", "nome": "ui-waf", "config": {"modo": "detectar", "alvo_recurso_id": "admin-ui"}}
    )
    refs = Refs.of(parse_blueprint(raw), sso=True)
    waf = next(w for w in refs.wafs if w.name == "ui-waf")
    assert refs.edge_service("admin-ui") == "ui-waf"
    assert (waf.next_hop, waf.upstream) == ("admin-ui-sso", "http://admin-ui-sso.saas-net.svc.cluster.local:80")


# --- proxy builders -------------------------------------------------------------------


def test_proxy_env_configures_oidc_and_the_upstream():
    e = env(args_for())
    assert e["OAUTH2_PROXY_PROVIDER"] == "oidc"
    assert e["OAUTH2_PROXY_OIDC_ISSUER_URL"] == "https://login.acme.io/realms/admin"
    assert e["OAUTH2_PROXY_CLIENT_ID"] == "b2b-admin"
    assert e["OAUTH2_PROXY_REDIRECT_URL"] == "https://admin-ui.app.acme.io/oauth2/callback"
    assert e["OAUTH2_PROXY_UPSTREAMS"] == "http://admin-ui.saas-net.svc.cluster.local:80/"
    assert e["OAUTH2_PROXY_HTTP_ADDRESS"] == "0.0.0.0:4180"
    assert e["OAUTH2_PROXY_EMAIL_DOMAINS"] == "acme.io"
    assert "OAUTH2_PROXY_ALLOWED_GROUPS" not in e
    assert (e["OAUTH2_PROXY_COOKIE_SECURE"], e["OAUTH2_PROXY_COOKIE_NAME"]) == ("true", "__Host-admin-ui-sso")
    assert e["OAUTH2_PROXY_CODE_CHALLENGE_METHOD"] == "S256"


def test_groups_alone_restrict_sign_in():
    e = env(args_for(oidc(emailDomains=[], allowedGroups=["platform-admins", "sre"], groupsClaim="roles")))
    assert e["OAUTH2_PROXY_ALLOWED_GROUPS"] == "platform-admins,sre"
    assert e["OAUTH2_PROXY_OIDC_GROUPS_CLAIM"] == "roles"
    assert e["OAUTH2_PROXY_EMAIL_DOMAINS"] == "*"


def test_plain_http_gateway_gets_plain_cookies():
    e = env(args_for(edit=lambda bp: resource(bp, "wildcard-dns")["config"].update(tls=False)))
    assert e["OAUTH2_PROXY_REDIRECT_URL"] == "http://admin-ui.app.acme.io/oauth2/callback"
    assert (e["OAUTH2_PROXY_COOKIE_SECURE"], e["OAUTH2_PROXY_COOKIE_NAME"]) == ("false", "admin-ui-sso")


def test_secrets_reach_the_proxy_only_through_secret_key_refs():
    args = args_for()
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in proxy_env(args) if "valueFrom" in e}
    assert refs == {
        "OAUTH2_PROXY_CLIENT_SECRET": {"name": "admin-ui-sso", "key": "client-secret"},
        "OAUTH2_PROXY_COOKIE_SECRET": {"name": "admin-ui-sso", "key": "cookie-secret"},
    }
    assert SECRET not in repr(args)
    assert all(SECRET not in str(e.get("value", "")) for e in proxy_env(args))


def test_cookie_secret_is_the_32_byte_form_oauth2_proxy_accepts():
    raw = bytes([0xFB, 0xFF, 0xBF] * 10 + [0x01, 0x02])  # standard base64 of these has '+', '/' and '='
    standard = base64.b64encode(raw).decode()
    assert {"+", "/", "="} <= set(standard)
    value = cookie_secret(standard)
    assert len(value) == 43 and not {"+", "/", "="} & set(value)
    # oauth2-proxy: base64.RawURLEncoding.DecodeString, used when it yields 16, 24 or 32 bytes.
    assert base64.urlsafe_b64decode(value + "=") == raw


def test_proxy_pod_is_restricted_read_only_and_probed():
    pod = deployment_spec(args_for())
    spec = pod["template"]["spec"]
    assert restricted_violations(spec) == []
    assert spec["automountServiceAccountToken"] is False and spec["securityContext"]["runAsUser"] == 65532
    (container,) = spec["containers"]
    assert container["image"] == IMAGES["sso"] == "quay.io/oauth2-proxy/oauth2-proxy:v7.15.3"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert pod["replicas"] == 2  # admin-ui's replicas_min
    assert [c["topologyKey"] for c in spec["topologySpreadConstraints"]] == [meta.ZONE_KEY, meta.HOST_KEY]
    # Like every other container: registry credentials re-checked at each start (meta.IMAGE_PULL_POLICY).
    assert container["imagePullPolicy"] == meta.IMAGE_PULL_POLICY == "Always"


def test_sessions_are_rechecked_with_the_idp():
    """oauth2-proxy's cookie-refresh (0 = never, its default) re-validates the session with the IdP's
    refresh token; without it a user removed at the IdP keeps access for the whole cookie-expire."""
    e = env(args_for())
    refresh, expire = e["OAUTH2_PROXY_COOKIE_REFRESH"], e["OAUTH2_PROXY_COOKIE_EXPIRE"]

    def minutes(duration: str) -> int:
        return int(duration[:-1]) * (60 if duration.endswith("h") else 1)

    assert 0 < minutes(refresh) < minutes(expire)


def test_idp_egress_follows_the_issuer_port():
    assert idp_policy_spec(args_for())["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]
    custom = idp_policy_spec(args_for(oidc(issuerUrl="https://idp.acme.io:8443/realms/x")))
    assert custom["policyTypes"] == ["Egress"] and custom["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert custom["podSelector"]["matchLabels"] == meta.selector("admin-ui-sso")


# --- rendered platform ----------------------------------------------------------------


def test_sso_off_keeps_the_web_compute_public_and_warns(seed_render):
    assert "admin-ui-sso" not in seed_render.names("Deployment")
    assert "admin-ui-sso" not in seed_render.names("Secret") | seed_render.names("NetworkPolicy") | seed_render.names(
        "Service"
    )
    assert labels(seed_render, "admin-ui")[meta.ENTRYPOINT_LABEL] == "true"
    assert backends(seed_render.get("Ingress", "wildcard-dns"))["admin-ui.app.acme.io"] == "admin-ui"
    (warning,) = [w for w in seed_render.run.warnings if "unauthenticated" in w]
    assert warning == (
        "admin UI unauthenticated: web compute(s) admin-ui are served at admin-ui.app.acme.io with no login in front; "
        "set b2b-platform:oidc to put them behind SSO (docs/sso.md)"
    )
    assert seed_render.run.exports["ssoRedirectUrls"] == []


def test_sso_on_renders_the_proxy_tier(sso_render):
    types = [r.typ for r in sso_render.run.mocks.resources]
    assert types.count("b2b-platform:sso:AdminSso") == 1
    assert types.count("random:index/randomBytes:RandomBytes") == 1
    assert sso_render.get("ServiceAccount", "admin-ui-sso")["automountServiceAccountToken"] is False
    assert sso_render.get("Service", "admin-ui-sso")["spec"] == meta.http_service_spec("admin-ui-sso")
    assert sso_render.get("PodDisruptionBudget", "admin-ui-sso")["spec"] == meta.pdb_spec(meta.selector("admin-ui-sso"))
    assert sso_render.get("Secret", "admin-ui-sso")["stringData"] == {
        "client-secret": "<redacted>",
        "cookie-secret": "<redacted>",
    }
    assert not [w for w in sso_render.run.warnings if "unauthenticated" in w]
    assert sso_render.run.exports["ssoRedirectUrls"] == ["https://admin-ui.app.acme.io/oauth2/callback"]


def test_sso_on_routes_the_admin_host_to_the_proxy(sso_render):
    assert backends(sso_render.get("Ingress", "wildcard-dns")) == {
        "admin-ui.app.acme.io": "admin-ui-sso",
        "*.app.acme.io": "edge-waf",
    }


def test_sso_on_moves_the_entry_point_and_locks_the_ui(sso_render):
    assert labels(sso_render, "admin-ui-sso")[meta.ENTRYPOINT_LABEL] == "true"
    assert meta.ENTRYPOINT_LABEL not in labels(sso_render, "admin-ui")
    rules = ingress_rules_for(sso_render, "admin-ui")
    assert rules.pop("allow-admin-ui-sso-to-admin-ui") == [
        {
            "from": [{"podSelector": {"matchLabels": meta.selector("admin-ui-sso")}}],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert list(rules) == ["tenant-obs-scrape-computes"]  # Insight's Prometheus, on the metrics port only
    egress = sso_render.get("NetworkPolicy", "allow-admin-ui-sso-to-idp")["spec"]
    # Any address but the fabric's private cidr and the API server's range (the dev stack's apiServerCidr).
    assert egress["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.50.0.0/16", "172.18.0.0/16"]}},
        {"ipBlock": {"cidr": "::/0"}},
    ]


def test_sso_secret_values_are_pulumi_secrets_and_never_plain_env(sso_render):
    (registered,) = [
        r for r in sso_render.run.mocks.of_type("kubernetes:core/v1:Secret") if r.name.startswith("admin-ui-sso")
    ]
    assert registered.inputs["stringData"].get(SECRET_SIG)  # the client and cookie secrets are secret in state
    for o in sso_render.objects:
        assert SECRET not in repr(o), o["metadata"]["name"]
    container = sso_render.get("Deployment", "admin-ui-sso")["spec"]["template"]["spec"]["containers"][0]
    secret_vars = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert secret_vars == {"OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"}
    assert not [e for e in container["env"] if "SECRET" in e["name"] and "value" in e]


def test_sso_render_is_schema_valid_and_restricted(sso_render):
    assert {f"{o['kind']}/{o['metadata']['name']}": validate(o) for o in sso_render.objects if validate(o)} == {}
    pod = sso_render.get("Deployment", "admin-ui-sso")["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []


def test_waf_in_front_of_a_proxied_web_compute(render, tmp_path):
    """edge → ui-waf → admin-ui-sso → admin-ui, each hop reachable only from the one before."""

    def edit(bp):
        bp["recursos"].append(
            {"tipo": "sentinel", "nome": "ui-waf", "config": {"modo": "bloquear", "alvo_recurso_id": "admin-ui"}}
        )

    rendered = render(oidc(), blueprint=variant(tmp_path, edit), secret_keys=("oidc",))
    assert backends(rendered.get("Ingress", "wildcard-dns"))["admin-ui.app.acme.io"] == "ui-waf"
    waf = rendered.get("Deployment", "ui-waf")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "BACKEND", "value": "http://admin-ui-sso.saas-net.svc.cluster.local:80"} in waf["env"]
    assert labels(rendered, "ui-waf")[meta.ENTRYPOINT_LABEL] == "true"
    assert meta.ENTRYPOINT_LABEL not in labels(rendered, "admin-ui-sso")
    assert ingress_rules_for(rendered, "admin-ui-sso") == {
        "allow-ui-waf-to-admin-ui-sso": [
            {
                "from": [{"podSelector": {"matchLabels": meta.selector("ui-waf")}}],
                "ports": [{"protocol": "TCP", "port": 4180}],
            }
        ],
    }
    assert list(ingress_rules_for(rendered, "admin-ui")) == [
        "allow-admin-ui-sso-to-admin-ui",
        "tenant-obs-scrape-computes",
    ]
    assert {f"{o['kind']}/{o['metadata']['name']}": validate(o) for o in rendered.objects if validate(o)} == {}


def test_one_proxy_per_web_compute(render, tmp_path):
    def edit(bp):
        bp["recursos"].append(
            {"tipo": "compute", "nome": "support-ui", "config": {"subtipo": "web", "replicas_min": 1}}
        )

    rendered = render(oidc(), blueprint=variant(tmp_path, edit), secret_keys=("oidc",))
    assert {"admin-ui-sso", "support-ui-sso"} <= rendered.names("Deployment")
    assert backends(rendered.get("Ingress", "wildcard-dns"))["support-ui.app.acme.io"] == "support-ui-sso"
    assert sorted(rendered.run.exports["ssoRedirectUrls"]) == [
        "https://admin-ui.app.acme.io/oauth2/callback",
        "https://support-ui.app.acme.io/oauth2/callback",
    ]


# --- CLI stack files ------------------------------------------------------------------


def stack_file(tmp_path, secret_line: str) -> str:
    path = tmp_path / "Pulumi.sso.yaml"
    path.write_text(
        "config:\n"
        "  b2b-platform:oidc:\n"
        "    issuerUrl: https://login.acme.io/realms/admin\n"
        "    clientId: b2b-admin\n"
        f"    clientSecret: {secret_line}\n"
        "    emailDomains: [acme.io]\n"
    )
    return str(path)


def cli(*args: str):
    return subprocess.run(
        [sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_reads_a_secure_client_secret_as_a_placeholder(tmp_path):
    # What `pulumi config set --secret --path 'b2b-platform:oidc.clientSecret' ...` writes.
    out = tmp_path / "out"
    result = cli(
        "render", SEED, "--stack-config", stack_file(tmp_path, "\n      secure: v1:AAAABBBBCCCC"), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert (out / "saas-net" / "deployment-admin-ui-sso.yaml").exists()
    assert (
        "<secret>" not in (out / "saas-net" / "secret-admin-ui-sso.yaml").read_text()
    )  # redacted, not even the placeholder


def test_cli_rejects_a_plain_client_secret(tmp_path):
    result = cli("validate", SEED, "--stack-config", stack_file(tmp_path, "plain-text"))
    assert result.returncode == 2
    assert "oidc.clientSecret: must be a Pulumi secret" in result.stderr
