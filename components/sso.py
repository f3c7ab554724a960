"""AdminSso: an OpenID Connect login proxy (oauth2-proxy) in front of one web compute.

One proxy per web compute, not one for all: oauth2-proxy routes upstreams by path only,
while each admin UI has its own host, redirect URL (`https://<web>.<base>/oauth2/callback`)
and session cookie; a proxy per host also scales and fails with the UI it guards.

The edge (or the web compute's WAF, which stays outermost) sends `<web>.<base>` to the
proxy's Service; the proxy signs users in at the IdP and forwards authenticated requests,
with `X-Forwarded-Email`/`-User`/`-Groups`, to the compute. A NetworkPolicy lets only the
proxy pods reach the compute, so those headers cannot be forged from elsewhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_random as random

from . import kube, meta
from .blueprint import Blueprint
from .contracts import Refs, SsoRef
from .settings import ComputeSettings, Settings

LAYER = "sso"
RESOURCES = meta.resources("50m", "64Mi", "250m", "128Mi")
# Admin sessions end after a working day; the IdP decides whether signing in again needs a prompt.
SESSION = "8h"
# How often a session is re-checked with the IdP (refresh token): a user removed or disabled
# there loses access within this, not at the end of SESSION. Must be shorter than SESSION.
SESSION_REFRESH = "15m"
# Keys of the proxy's Secret.
CLIENT_SECRET_KEY = "client-secret"
COOKIE_SECRET_KEY = "cookie-secret"


@dataclass(frozen=True)
class AdminSsoArgs:
    namespace: str
    name: str
    target: str
    target_selector: dict
    target_port: int
    upstream: str
    port: int
    host: str
    tls: bool
    replicas: int
    multi_zone: bool
    # The pods are edge entry points (public fabric, no WAF in front of the proxy).
    public: bool
    image: str
    issuer_url: str
    idp_port: int
    client_id: str
    client_secret: str = field(repr=False)
    email_domains: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    groups_claim: str = "groups"
    # Ranges the IdP rule leaves out: the fabric's private cidr and the API server's (docs/network.md).
    idp_except: tuple[str, ...] = ()

    @classmethod
    def of(cls, ref: SsoRef, bp: Blueprint, settings: Settings, refs: Refs) -> AdminSsoArgs:
        oidc, web = settings.oidc, bp.by_name(ref.target)
        if oidc is None:  # the platform plans a login proxy only when oidc is set
            raise ValueError(f"login proxy {ref.name!r} planned without b2b-platform:oidc")
        gateway = bp.one("gateway").config
        return cls(
            namespace=ref.namespace,
            name=ref.name,
            target=web.nome,
            target_selector=meta.selector(web.nome),
            target_port=settings.computes.get(web.nome, ComputeSettings()).port,
            upstream=ref.upstream,
            port=ref.port,
            host=f"{web.nome}.{gateway.base_domain}",
            tls=gateway.tls,
            # The proxy sees every request the UI does, so it is as wide as the UI's floor.
            replicas=web.config.replicas_min,
            multi_zone=bp.multi_zone,
            public=bp.one("fabric").config.publica and refs.edge_service(web.nome) == ref.service,
            image=settings.image("sso"),
            issuer_url=oidc.issuer_url,
            idp_port=oidc.issuer_port,
            client_id=oidc.client_id,
            client_secret=oidc.client_secret.get_secret_value(),
            idp_except=tuple(c for c in (bp.one("fabric").config.cidr, settings.api_server_cidr) if c),
            email_domains=oidc.email_domains,
            allowed_groups=oidc.allowed_groups,
            groups_claim=oidc.groups_claim,
        )

    @property
    def redirect_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}/oauth2/callback"


def pod_labels(args: AdminSsoArgs) -> dict:
    return meta.pod_labels(args.name, LAYER, args.public, {"b2b-platform.io/target": args.target})


def proxy_env(args: AdminSsoArgs) -> list:
    """oauth2-proxy's settings as OAUTH2_PROXY_* variables (its configuration overview)."""
    plain = {
        "OAUTH2_PROXY_PROVIDER": "oidc",
        "OAUTH2_PROXY_OIDC_ISSUER_URL": args.issuer_url,
        "OAUTH2_PROXY_CLIENT_ID": args.client_id,
        "OAUTH2_PROXY_REDIRECT_URL": args.redirect_url,
        # The trailing slash makes the upstream match every path, not just "/".
        "OAUTH2_PROXY_UPSTREAMS": f"{args.upstream}/",
        "OAUTH2_PROXY_HTTP_ADDRESS": f"0.0.0.0:{args.port}",
        # Only groups restrict sign-in when no domain is listed; oauth2-proxy insists on one.
        "OAUTH2_PROXY_EMAIL_DOMAINS": ",".join(args.email_domains) or "*",
        "OAUTH2_PROXY_CODE_CHALLENGE_METHOD": "S256",
        "OAUTH2_PROXY_SKIP_PROVIDER_BUTTON": "true",
        "OAUTH2_PROXY_COOKIE_SECURE": "true" if args.tls else "false",
        # __Host- binds the cookie to this exact host over HTTPS (browsers enforce it).
        "OAUTH2_PROXY_COOKIE_NAME": f"__Host-{args.name}" if args.tls else args.name,
        "OAUTH2_PROXY_COOKIE_SAMESITE": "lax",
        "OAUTH2_PROXY_COOKIE_EXPIRE": SESSION,
        "OAUTH2_PROXY_COOKIE_REFRESH": SESSION_REFRESH,
        # Behind the edge controller (and maybe the WAF): client IPs in the auth log come
        # from X-Real-IP, which only those can set: the NetworkPolicies admit nobody else.
        "OAUTH2_PROXY_REVERSE_PROXY": "true",
        # The UI reads who signed in from X-Forwarded-Email/-User/-Groups; a synthetic Basic
        # Authorization header (on by default) would only confuse a UI with its own auth.
        "OAUTH2_PROXY_PASS_BASIC_AUTH": "false",
        "OAUTH2_PROXY_SILENCE_PING_LOGGING": "true",
    }
    if args.allowed_groups:
        plain["OAUTH2_PROXY_ALLOWED_GROUPS"] = ",".join(args.allowed_groups)
        plain["OAUTH2_PROXY_OIDC_GROUPS_CLAIM"] = args.groups_claim
    return [{"name": k, "value": v} for k, v in plain.items()] + [
        meta.secret_env("OAUTH2_PROXY_CLIENT_SECRET", args.name, CLIENT_SECRET_KEY),
        meta.secret_env("OAUTH2_PROXY_COOKIE_SECRET", args.name, COOKIE_SECRET_KEY),
    ]


def proxy_container(args: AdminSsoArgs) -> dict:
    return {
        "name": "oauth2-proxy",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "ports": [{"name": "http", "containerPort": args.port, "protocol": "TCP"}],
        "env": proxy_env(args),
        "resources": RESOURCES,
        "securityContext": meta.container_security_context(),
        # The proxy fetches the IdP's discovery document before it listens: give it a minute.
        "startupProbe": meta.http_probe("/ping", "http", period=2, failures=30),
        # /ready also checks the session store; /ping only that the process serves.
        "readinessProbe": meta.http_probe("/ready", "http", period=5, failures=3),
        "livenessProbe": meta.http_probe("/ping", "http", period=10, failures=6),
    }


def deployment_spec(args: AdminSsoArgs) -> dict:
    # Cookie sessions and a static binary: nothing is written, so no volumes at all.
    return meta.deployment_spec(
        args.name, pod_labels(args), args.multi_zone, {"containers": [proxy_container(args)]}, args.replicas
    )


def target_policy_spec(args: AdminSsoArgs) -> dict:
    """Only the proxy pods reach the web compute, on its serving port."""
    return meta.allow_ingress(
        args.target_selector, [meta.pod_peer(meta.selector(args.name))], meta.tcp_ports(args.target_port)
    )


def idp_policy_spec(args: AdminSsoArgs) -> dict:
    """The proxy's way out to the IdP (discovery, keys, token exchange).

    The fabric only lets traffic leave for DNS and its private cidr. The IdP is outside the
    cluster at addresses nobody can pin (SaaS IdPs sit behind CDNs), so this opens the
    issuer's port to any address but the fabric's private cidr and the API server's range
    (a public entry point has no business there), for the proxy pods only; clusters with
    FQDN-aware policies (Cilium, Calico Enterprise) can narrow it to the issuer's host.
    """
    anywhere = []
    for cidr in ("0.0.0.0/0", "::/0"):
        version = ipaddress.ip_network(cidr).version
        excluded = [e for e in args.idp_except if ipaddress.ip_network(e).version == version]
        anywhere.append({"ipBlock": {"cidr": cidr, **({"except": excluded} if excluded else {})}})
    return meta.allow_egress(meta.selector(args.name), anywhere, meta.tcp_ports(args.idp_port))


def cookie_secret(b64: str) -> str:
    """Random bytes (standard base64) as unpadded URL-safe base64: the form oauth2-proxy
    decodes to the AES key (with '+', '/' or '=' it would take the 44 characters themselves
    as the key and refuse to start)."""
    return b64.translate(str.maketrans("+/", "-_")).rstrip("=")


class AdminSso(pulumi.ComponentResource):
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    host: str
    redirect_url: str

    def __init__(self, name: str, args: AdminSsoArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:sso:AdminSso", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        md = meta.metadata(args.name, args.namespace, LAYER, {"b2b-platform.io/target": args.target})
        # 32 bytes: an AES-256 key for the session cookie.
        cookie = random.RandomBytes(f"{name}-cookie-secret", length=32, opts=child)
        kube.Object(
            f"{name}-secret",
            "v1",
            "Secret",
            metadata=md,
            type="Opaque",
            stringData={
                CLIENT_SECRET_KEY: pulumi.Output.secret(args.client_secret),
                COOKIE_SECRET_KEY: pulumi.Output.secret(cookie.base64.apply(cookie_secret)),
            },
            opts=child,
        )
        deployment, service = kube.http_tier(name, md, deployment_spec(args), meta.http_service_spec(args.name), child)
        kube.Object(
            f"{name}-policy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            metadata={**md, "name": f"allow-{args.name}-to-{args.target}"},
            spec=target_policy_spec(args),
            opts=child,
        )
        kube.Object(
            f"{name}-idp-policy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            metadata={**md, "name": f"allow-{args.name}-to-idp"},
            spec=idp_policy_spec(args),
            opts=child,
        )
        self.deployment_name = deployment.metadata["name"]
        self.service_name = service.metadata["name"]
        self.host = args.host
        self.redirect_url = args.redirect_url
        self.register_outputs(
            {
                "deployment_name": self.deployment_name,
                "service_name": self.service_name,
                "host": self.host,
                "redirect_url": self.redirect_url,
            }
        )
