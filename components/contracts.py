"""How one layer finds another: names and selectors derived from the blueprint alone.

Kubernetes names are stable and readable (`<resource nome>` or `<nome>-<role>`), so a
layer can address another without waiting for its Pulumi outputs: the computes read the
database Secret by name, the WAF forwards to the API's Service by name, the network
policies select pods by these labels. The owning layer's module creates objects under
exactly these names; its tests assert that they match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from . import meta
from .blueprint import Blueprint

T = TypeVar("T")

TENANT_ROLE_PREFIX = "tenant_"
# PostgreSQL cuts identifiers at 63 bytes: a longer tenant id would silently share a role.
TENANT_ID_MAX_FOR_DATABASE = 63 - len(TENANT_ROLE_PREFIX)
# Every tenant is an entry in the shared Cluster (role) and Database (schema) objects, which
# Kubernetes caps at ~1.5 MiB each, status included; tests/test_datastore.py measures the worst case.
MAX_DATABASE_TENANTS = 5000
# The platform's own roles share the tenant prefix. A tenant whose role name equals one would
# render a second `managed.roles` entry of that name, which CloudNativePG 1.30's webhook
# rejects for the whole Cluster (internal/webhook/v1/cluster_webhook.go, validateManagedRoles:
# "Role name is duplicate of another"), so their ids are reserved; a new platform role added
# here is reserved with them.
ROUTER_ROLE = f"{TENANT_ROLE_PREFIX}router"  # the computes' login role; SET LOCAL ROLE <tenant> per transaction
RLS_GROUP = f"{TENANT_ROLE_PREFIX}rls"  # NOLOGIN group of the `rls` tenants, the only grantee of shared tables
LOGIN_GROUP = f"{TENANT_ROLE_PREFIX}login"  # NOLOGIN group of the enterprise login roles
PLATFORM_ROLES = (ROUTER_ROLE, RLS_GROUP, LOGIN_GROUP)
ROLE_RESERVED_TENANT_IDS = frozenset(r.removeprefix(TENANT_ROLE_PREFIX).replace("_", "-") for r in PLATFORM_ROLES)


def tenant_role(tenant_id: str) -> str:
    """A tenant's PostgreSQL role, and its schema under `schema` isolation.

    Tenant ids are DNS labels (no `_`), so mapping `-` to `_` is one-to-one and the name
    never needs quoting in SQL.
    """
    return TENANT_ROLE_PREFIX + tenant_id.replace("-", "_")


@dataclass(frozen=True)
class DatabaseRef:
    """CloudNativePG cluster `<nome>`; computes connect through the rw pooler."""

    cluster: str
    namespace: str
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def pooler_service(self) -> str:
        return f"{self.cluster}-pooler-rw"

    @property
    def app_secret(self) -> str:
        return f"{self.cluster}-app"  # created by CNPG: username, password, dbname, host, port, uri

    @property
    def database(self) -> str:
        return "app"

    @property
    def router_role(self) -> str:
        return ROUTER_ROLE

    @property
    def router_secret(self) -> str:
        return f"{self.cluster}-router"  # kubernetes.io/basic-auth: username, password

    @property
    def migrator_secret(self) -> str:
        return f"{self.cluster}-migrator"  # kubernetes.io/basic-auth of the migrations Job's login

    @property
    def migrations(self) -> str:
        return f"{self.cluster}-migrations"  # the migrations Job's pods (name label), ConfigMap and Job prefix

    @property
    def migrations_selector(self) -> dict:
        return meta.selector(self.migrations)

    @property
    def rw_service(self) -> str:
        # CNPG's Service to the primary (cloudnative-pg v1.30.0 api/v1/cluster_funcs.go GetServiceReadWriteName).
        return f"{self.cluster}-rw"

    def tenant_secret(self, tenant_id: str) -> str:
        return f"{self.cluster}-tenant-{tenant_id}"  # enterprise tenants' own login (basic-auth)

    @property
    def tenant_logins_secret(self) -> str:
        # Every enterprise tenant's password under its tenant id, the one the computes mount.
        return f"{self.cluster}-tenant-logins"

    @property
    def port(self) -> int:
        return 5432

    @property
    def selector(self) -> dict:
        return {"cnpg.io/cluster": self.cluster}

    @property
    def instance_selector(self) -> dict:
        # The poolers carry `cnpg.io/cluster` too; only instances run the PostgreSQL exporter.
        return {**self.selector, "cnpg.io/podRole": "instance"}

    @property
    def pooler_selector(self) -> dict:
        return {"cnpg.io/poolerName": self.pooler_service}

    @property
    def metrics_port(self) -> str:
        return "metrics"  # CNPG's exporter container port (9187), by name as CNPG declares it


@dataclass(frozen=True)
class ObjectStoreRef:
    """S3-compatible store `<nome>` (SeaweedFS) serving on 8333 inside the fabric."""

    name: str
    namespace: str
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def endpoint(self) -> str:
        return f"http://{meta.service_host(self.name, self.namespace, self.domain)}:{self.port}"

    @property
    def port(self) -> int:
        return 8333

    @property
    def credentials_secret(self) -> str:
        # The backup path's keys (backup bucket only); keys: accessKeyId, secretAccessKey.
        return f"{self.name}-s3"

    @property
    def app_credentials_secret(self) -> str:
        # The computes' keys (tenant bucket only); same keys.
        return f"{self.name}-s3-app"

    @property
    def tenant_bucket(self) -> str:
        return f"{self.name}-tenants"  # objects under <tenant id>/...

    @property
    def backup_bucket(self) -> str:
        return f"{self.name}-backups"

    @property
    def selector(self) -> dict:
        return meta.selector(self.name)

    @property
    def metrics_port(self) -> str:
        return "metrics"  # SeaweedFS's `-metricsPort`, by its container port name


@dataclass(frozen=True)
class BrokerRef:
    """NATS `<nome>` on 4222 inside the fabric."""

    name: str
    namespace: str
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def url(self) -> str:
        return f"nats://{meta.service_host(self.name, self.namespace, self.domain)}:{self.port}"

    @property
    def port(self) -> int:
        return 4222

    @property
    def selector(self) -> dict:
        return meta.selector(self.name)

    @property
    def metrics_port(self) -> str:
        # The prometheus-nats-exporter beside each server exposes its container port under this name.
        return "metrics"

    @property
    def metrics_prefix(self) -> str:
        return "gnatsd"  # the exporter's default metric prefix (no `-prefix` flag)

    @property
    def client_label(self) -> dict:
        """Pods carrying this label (billing, CRM consumers) may connect, besides the computes."""
        return {"b2b-platform.io/beacon-client": self.name}

    def user_secret(self, user: str) -> str:
        return f"{self.name}-{user}"  # kubernetes.io/basic-auth: username, password

    @property
    def lifecycle_stream(self) -> str:
        return "tenant-lifecycle"

    @staticmethod
    def lifecycle_subject(tenant: str, event: str) -> str:
        return f"tenants.{tenant}.lifecycle.{event}"


@dataclass(frozen=True)
class MetricsRef:
    """Prometheus (operator CR) `<nome>` in the fabric."""

    name: str
    namespace: str
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def url(self) -> str:
        # The Prometheus Operator fronts every Prometheus in a namespace with `prometheus-operated`.
        return f"http://{meta.service_host('prometheus-operated', self.namespace, self.domain)}:{self.port}"

    @property
    def port(self) -> int:
        return 9090

    @property
    def selector(self) -> dict:
        return {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": self.name}


# Every HTTP tier (computes, WAFs, login proxies) serves its ClusterIP Service on this port.
HTTP_SERVICE_PORT = 80


def http_upstream(service: str, namespace: str, domain: str) -> str:
    return f"http://{meta.service_host(service, namespace, domain)}:{HTTP_SERVICE_PORT}"


@dataclass(frozen=True)
class SsoRef:
    """Login proxy `<web>-sso` (oauth2-proxy) in front of web compute `target`."""

    name: str
    namespace: str
    target: str
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def service(self) -> str:
        return self.name

    @property
    def upstream(self) -> str:
        return http_upstream(self.target, self.namespace, self.domain)

    @property
    def port(self) -> int:
        """The pods' port (oauth2-proxy's usual 4180); NetworkPolicies name pod ports."""
        return 4180

    @property
    def selector(self) -> dict:
        return meta.selector(self.name)


@dataclass(frozen=True)
class WafRef:
    """Sentinel `<nome>`: the WAF's Service in front of compute `target`, both on HTTP_SERVICE_PORT.

    With a login proxy on the same compute the WAF stays outermost (it inspects the login
    flow too) and forwards to the proxy, `via`, instead of the compute.
    """

    name: str
    namespace: str
    target: str
    via: SsoRef | None = None
    domain: str = meta.CLUSTER_DOMAIN

    @property
    def service(self) -> str:
        return self.name

    @property
    def next_hop(self) -> str:
        """The Service (and workload) the WAF forwards to."""
        return self.via.service if self.via else self.target

    @property
    def upstream(self) -> str:
        return http_upstream(self.next_hop, self.namespace, self.domain)

    @property
    def selector(self) -> dict:
        return meta.selector(self.name)


# cert-manager's namespace: the add-on installs there, and CA ClusterIssuers read their Secret from it.
CERT_MANAGER_NAMESPACE = "cert-manager"


@dataclass(frozen=True)
class LocalCaRef:
    """The kind stack's CA: self-signed issuer → CA Certificate → CA ClusterIssuer `<issuer>`.

    A CA ClusterIssuer reads its key pair from cert-manager's own namespace, so the CA
    Certificate's Secret lives there, named after the issuer.
    """

    issuer: str
    namespace: str = CERT_MANAGER_NAMESPACE

    @property
    def root_issuer(self) -> str:
        return f"{self.issuer}-selfsigned"

    @property
    def secret(self) -> str:
        return self.issuer  # keys: tls.crt, tls.key, ca.crt


def present(ref: T | None, layer: str) -> T:
    """A layer's own ref, which `Refs.of` derives from the same blueprint resource as the layer."""
    if ref is None:
        raise ValueError(f"the blueprint has no {layer} resource")
    return ref


@dataclass(frozen=True)
class Refs:
    namespace: str
    database: DatabaseRef | None
    object_store: ObjectStoreRef | None
    broker: BrokerRef | None
    metrics: MetricsRef | None
    wafs: tuple[WafRef, ...] = ()
    ssos: tuple[SsoRef, ...] = ()

    def sso_for(self, compute: str) -> SsoRef | None:
        return next((s for s in self.ssos if s.target == compute), None)

    def edge_service(self, compute: str) -> str:
        """The Service the edge sends a compute's traffic to: the outermost tier in front of
        it (its WAF, else its login proxy), else the compute's own."""
        waf = next((w.service for w in self.wafs if w.target == compute), None)
        sso = self.sso_for(compute)
        return waf or (sso.service if sso else compute)

    @classmethod
    def of(cls, bp: Blueprint, sso: bool = False, domain: str = meta.CLUSTER_DOMAIN) -> Refs:
        """`sso`: the web computes sit behind login proxies (stack config `oidc` is set);
        `domain`: the cluster's DNS domain (stack config `clusterDomain`)."""
        ns = bp.one("fabric").nome
        ssos = (
            tuple(SsoRef(f"{c.nome}-sso", ns, c.nome, domain) for c in bp.of("compute") if c.config.subtipo == "web")
            if sso
            else ()
        )
        proxied = {p.target: p for p in ssos}

        def ref(tipo, kind):
            found = bp.one(tipo)
            return kind(found.nome, ns, domain) if found else None

        database = bp.one("datastore")
        return cls(
            namespace=ns,
            database=DatabaseRef(database.nome, ns, domain) if database else None,
            object_store=ref("archive", ObjectStoreRef),
            broker=ref("beacon", BrokerRef),
            metrics=ref("insight", MetricsRef),
            wafs=tuple(
                WafRef(s.nome, ns, s.config.alvo_recurso_id, proxied.get(s.config.alvo_recurso_id), domain)
                for s in bp.of("sentinel")
            ),
            ssos=ssos,
        )
