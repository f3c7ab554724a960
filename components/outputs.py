"""What a user needs after `pulumi up`: URLs, how to trust the local CA, endpoints.

Pure builders from the validated blueprint and settings, so the stack outputs are known
before the cluster answers and can be tested without Pulumi. Credentials are never
outputs: they stay in cluster Secrets, and the outputs say which Secret holds them.
"""

from __future__ import annotations

from . import meta
from .beacon import PUBLISHER, inbox_prefix
from .blueprint import Blueprint
from .contracts import LocalCaRef, Refs
from .settings import Settings

# Where kind publishes the edge controller's host ports (deploy/kind-config.yaml).
LOCAL_EDGE_ADDRESS = "127.0.0.1"


def scheme(bp: Blueprint) -> str:
    gateway = bp.one("gateway")
    return "https" if gateway and gateway.config.tls else "http"


def tenant_hosts(bp: Blueprint, settings: Settings) -> dict[str, list[str]]:
    """Tenant id → its hosts: `<id>.<base>` first, then its custom domains, then `<id>.<previous domain>`."""
    gateway = bp.one("gateway")
    if gateway is None:
        return {}
    base, previous = gateway.config.base_domain, settings.edge.previous_domains
    return {t.id: [f"{t.id}.{base}", *t.domains, *(f"{t.id}.{old}" for old in previous)] for t in settings.tenants}


def web_hosts(bp: Blueprint) -> dict[str, str]:
    """Each `web` compute (the admin UI) on its own host under the base domain."""
    gateway = bp.one("gateway")
    if gateway is None:
        return {}
    return {c.nome: f"{c.nome}.{gateway.config.base_domain}" for c in bp.of("compute") if c.config.subtipo == "web"}


def trust_ca_command(ca: LocalCaRef, context: str | None) -> str:
    """Save the local CA certificate to `<issuer>.crt` (then add it to a trust store, or pass it to curl)."""
    ctx = f"--context {context} " if context else ""
    return (
        f"kubectl {ctx}-n {ca.namespace} get secret {ca.secret} -o jsonpath='{{.data.ca\\.crt}}' "
        f"| base64 -d > {ca.issuer}.crt"
    )


def curl_example(host: str, proto: str, ca: LocalCaRef | None) -> str:
    """A request to a tenant host through the local edge, without touching /etc/hosts."""
    port = 443 if proto == "https" else 80
    cacert = f"--cacert {ca.issuer}.crt " if ca and proto == "https" else ""
    return f"curl {cacert}--resolve {host}:{port}:{LOCAL_EDGE_ADDRESS} {proto}://{host}/"


def endpoints(refs: Refs, context: str | None) -> dict:
    """In-cluster endpoints of the deployed backing services, and where their credentials live."""
    ctx = f"--context {context} " if context else ""

    def read_secret(name: str, key: str) -> str:
        return f"kubectl {ctx}-n {refs.namespace} get secret {name} -o jsonpath='{{.data.{key}}}' | base64 -d"

    out: dict = {}
    if refs.database:
        db = refs.database
        out["database"] = {
            "host": meta.service_host(db.pooler_service, db.namespace, db.domain),
            "port": db.port,
            "credentialsSecret": f"{db.namespace}/{db.app_secret}",
            "uriCommand": read_secret(db.app_secret, "uri"),
        }
    if refs.broker:
        # The computes' login: it may publish lifecycle events, with replies under its own inbox prefix.
        out["broker"] = {
            "url": refs.broker.url,
            "credentialsSecret": f"{refs.broker.namespace}/{refs.broker.user_secret(PUBLISHER)}",
            "inboxPrefix": inbox_prefix(PUBLISHER),
        }
    if refs.object_store:
        store = refs.object_store
        out["objectStore"] = {
            "endpoint": store.endpoint,
            "bucket": store.tenant_bucket,
            "credentialsSecret": f"{store.namespace}/{store.app_credentials_secret}",
        }
    if refs.metrics:
        out["prometheus"] = {"url": refs.metrics.url}
    return out


def stack_outputs(bp: Blueprint, settings: Settings, context: str | None) -> dict:
    """Every user-facing stack output that the blueprint and settings decide alone."""
    proto = scheme(bp)
    edge = bp.one("gateway") is not None
    tenants = tenant_hosts(bp, settings) if edge else {}
    web = web_hosts(bp) if edge else {}
    # The local CA only exists where this program installs the add-ons (the kind stack).
    ca = (
        LocalCaRef(settings.edge.cluster_issuer, settings.edge.cert_manager_namespace)
        if edge and settings.edge.local_ca and proto == "https"
        else None
    )
    out = {
        "tenantUrls": {tid: [f"{proto}://{h}" for h in hosts] for tid, hosts in tenants.items()},
        "adminUrls": {name: f"{proto}://{h}" for name, h in web.items()},
        "endpoints": endpoints(Refs.of(bp, domain=settings.cluster_domain), context),
    }
    if ca:
        out["trustLocalCa"] = trust_ca_command(ca, context)
    if settings.addons and tenants:
        first = next(iter(tenants.values()))[0]
        out["tryIt"] = curl_example(first, proto, ca)
        out["hostsEntry"] = " ".join([LOCAL_EDGE_ADDRESS, *(h for hs in tenants.values() for h in hs), *web.values()])
    return out
