"""Stack configuration (`b2b-platform:*` keys) and the tenant model, validated.

Config values reach the program as strings (Pulumi passes objects as JSON) or, from a
stack YAML file read by the CLI, as native values; both go through `parse_settings`.
Keys are camelCase like every Pulumi config key; error paths use them as written.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from . import meta
from .blueprint import DNS_LABEL, HOST_LABEL, Blueprint, Strict, _dns_label, field_error, load_blueprint, valid_hostname
from .connections import ConnectionBudget, max_connections_of, pooler_instances
from .contracts import (
    CERT_MANAGER_NAMESPACE,
    MAX_DATABASE_TENANTS,
    ROLE_RESERVED_TENANT_IDS,
    TENANT_ID_MAX_FOR_DATABASE,
    Refs,
    tenant_role,
)
from .images import IMAGES
from .problems import InvalidInput, Problem, from_validation_error

PROJECT = "b2b-platform"
# Hosts the platform serves itself or that would confuse customers if a tenant held them.
RESERVED_TENANT_IDS = frozenset(
    {
        "www",
        "api",
        "app",
        "admin",
        "auth",
        "login",
        "sso",
        "status",
        "static",
        "assets",
        "cdn",
        "mail",
        "smtp",
        "ftp",
        "ns1",
        "ns2",
        "dashboard",
        "grafana",
        "prometheus",
        "metrics",
        "docs",
        "help",
        "support",
        "billing",
        # Mail and DNS clients look these up under any domain they are given.
        "mta-sts",
        "autodiscover",
        "autoconfig",
        "webmail",
        "imap",
        "pop",
        "ns",
        "dns",
        "localhost",
    }
)


class Lax(Strict):
    """Settings accept Pulumi's string-typed config ("true", "3") but still no unknown keys."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=False, alias_generator=to_camel, populate_by_name=False
    )


class Sized(Lax):
    """Container requests and limits, overridable per layer from stack config."""

    # Kubernetes quantities for each container of the layer ("250m", "2").
    cpu_request: str = "100m"
    # A Kubernetes quantity ("256Mi", "1Gi"); Go servers derive GOMEMLIMIT from the limit.
    memory_request: str = "256Mi"
    # Kubernetes quantity: the CPU limit.
    cpu_limit: str = "1"
    # Kubernetes quantity: the memory limit.
    memory_limit: str = "1Gi"

    def resources(self) -> dict:
        return meta.resources(self.cpu_request, self.memory_request, self.cpu_limit, self.memory_limit)

    @model_validator(mode="after")
    def _memory_quantities(self):
        """memoryRequest and memoryLimit parse as Kubernetes quantities."""
        # Go servers derive GOMEMLIMIT from the limit (meta.go_memory_limit), so it must parse here.
        for key in ("memory_request", "memory_limit"):
            try:
                meta.memory_bytes(getattr(self, key))
            except ValueError as exc:
                raise field_error(to_camel(key), str(exc)) from None
        return self


class Tenant(Lax):
    # A DNS label: the tenant's host is <id>.<gateway base>, its database role tenant_<id>. Not reserved
    # (www, api, admin, ..., any resource name, and router, rls, login, whose roles are the platform's own),
    # unique, not in removedTenants.
    id: Annotated[str, AfterValidator(_dns_label)]
    # enterprise: its own database login, connection pool and rate limit (docs/tenants.md).
    plan: Literal["business", "enterprise"]
    # schema: tables in its own schema tenant_<id>; rls: rows in shared tables under row-level security.
    isolation: Literal["schema", "rls"]
    # Custom domains: unique, not overlapping another tenant's, not under the gateway's domain.
    domains: tuple[Annotated[str, AfterValidator(valid_hostname)], ...] = ()
    # Enterprise: raise it to rotate this tenant's database password alone (docs/layers/datastore.md).
    login_version: Annotated[int, Field(ge=0)] = 0
    # Phase 1 of a plan switch (docs/layers/datastore.md, switching plans): the plan the tenant comes
    # from. Both logins work until it is removed (phase 2); the computes' logins file already
    # says `plan`, so the application moves over as the kubelet refreshes it.
    previous_plan: Literal["business", "enterprise"] | None = None
    # Only the shared "pool" tier exists today; a "silo" tier (own namespace, compute,
    # quota and database) becomes another value here and another branch in Platform.
    tier: Literal["pool"] = "pool"

    @property
    def own_login(self) -> bool:
        """The tenant's role logs in with its own password: enterprise, or switching from or to it."""
        return "enterprise" in (self.plan, self.previous_plan)


class ComputeSettings(Sized):
    # Unset: the pinned demo echo server traefik/whoami, which prints the request's Host.
    image: str | None = None
    # The container port the Service, probes and metrics use (unprivileged: 1024 or above).
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    # The container's arguments (unset: the image's own).
    args: tuple[str, ...] | None = None
    # HTTP path of the readiness and liveness probes.
    probe_path: str = "/health"
    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"


def _object_name(value: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain): what IngressClasses and ClusterIssuers are called."""
    if len(value) > 253 or not all(DNS_LABEL.match(part) for part in value.split(".")):
        raise ValueError(
            f"{value!r} is not a Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253 "
            "characters)"
        )
    return value


ObjectName = Annotated[str, AfterValidator(_object_name)]


def _base_domain(value: str) -> str:
    try:
        return valid_hostname(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a base domain; expected one like 'app.acme.io' (a gateway dominio without '*.')"
        ) from None


class EdgeSettings(Lax):
    """The edge controller and the certificate issuers."""

    # The edge controller's IngressClass every Ingress names.
    ingress_class: ObjectName = "traefik"
    # Where the edge controller runs: the only namespace let into the fabric's entry points.
    controller_namespace: Annotated[str, AfterValidator(_dns_label)] = "traefik"
    # Issues the wildcard certificate: ACME DNS-01 in production, the local CA on kind.
    cluster_issuer: ObjectName = "b2b-local-ca"
    # Issues tenants' custom-domain certificates (ACME HTTP-01 in production); default: cluster_issuer.
    custom_domain_issuer: ObjectName | None = None
    # Create cluster_issuer as a self-signed CA chain (kind); its CA secret lives in cert_manager_namespace.
    local_ca: bool = False
    # cert-manager's namespace (where the local CA's Secret lives).
    cert_manager_namespace: Annotated[str, AfterValidator(_dns_label)] = CERT_MANAGER_NAMESPACE
    # Base domains the gateway served before its `dominio` changed: tenants' `<id>.<previous>` keep
    # being routed, certified and resolved until removed (docs/layers/gateway.md, changing the domain).
    previous_domains: tuple[Annotated[str, AfterValidator(_base_domain)], ...] = ()


def _network(value: str) -> str:
    """A network in CIDR form, host bits clear ('172.18.0.0/16')."""
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR form like '172.18.0.0/16' ({exc})") from None
    return value


def _comma_list(value: Any) -> Any:
    """A list, or one comma-separated string ('ddl, role, write': what `pulumi config set --path` stores)."""
    return [part.strip() for part in value.split(",")] if isinstance(value, str) else value


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
URL_PATH = re.compile(r"^/[A-Za-z0-9/_.~-]*$")
# Private and unique-local ranges: where pod addresses (hence the edge controller's) come from.
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")


def _method(value: str) -> str:
    """An HTTP method: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT or TRACE."""
    if value not in HTTP_METHODS:
        raise ValueError(f"{value!r} is not an HTTP method; accepted: {', '.join(HTTP_METHODS)}")
    return value


def _media_type(value: str) -> str:
    """A lowercase media type without parameters ('application/json')."""
    if not MEDIA_TYPE.match(value):
        raise ValueError(f"{value!r} is not a lowercase media type like 'application/json' (no parameters)")
    return value


def _url_path(value: str) -> str:
    """A URL path ('/graphql'): letters, digits, '/', '_', '.', '~', '-'."""
    if not URL_PATH.match(value):
        raise ValueError(f"{value!r} is not a URL path like '/graphql' (letters, digits, '/', '_', '.', '~', '-')")
    return value


# RFC 9110 §5.1: a field name is a token. `_` is refused too: CGI/WSGI servers read `X-Tenant-Id`
# and `X_Tenant_Id` as the same variable, and nginx passes only the hyphenated one through.
HEADER_TOKEN = re.compile(r"^[A-Za-z0-9!#$%&'*+.^`|~-]+$")
# What the WAF already sets or strips for the API (components/wafconfig.py) and hop-by-hop fields.
WAF_SET_HEADERS = frozenset(
    {
        "host",
        "proxy",
        "upgrade",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "x-real-ip",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-host",
    }
)


def _tenant_header(value: str) -> str:
    """An RFC 9110 header name without '_', not one the WAF sets or strips itself."""
    if not HEADER_TOKEN.match(value) or "_" in value:
        raise ValueError(
            f"{value!r} is not a valid HTTP header name: letters, digits and !#$%&'*+-.^`|~ only "
            "(RFC 9110 token; '_' is refused because CGI/WSGI servers treat it as '-'), e.g. 'X-Tenant-Id'"
        )
    if value.lower() in WAF_SET_HEADERS:
        raise ValueError(
            f"{value!r} is a header the WAF sets or strips itself; use a header of its own like 'X-Tenant-Id'"
        )
    return value


class RateLimit(Lax):
    """One tenant's budget at the edge: sustained requests per second and the burst above it."""

    # Sustained requests per second, split over the WAF's replica floor.
    requests_per_second: Annotated[int, Field(ge=1, le=1_000_000)]
    # Requests admitted at once above the rate, never queued (nginx limit_req burst, nodelay).
    burst: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class PlanRateLimits(Lax):
    """Per plan (tenants[].plan): every tenant of the plan gets this budget of its own."""

    business: RateLimit = RateLimit.model_validate({"requestsPerSecond": 50, "burst": 100})
    enterprise: RateLimit = RateLimit.model_validate({"requestsPerSecond": 200, "burst": 400})


class SentinelSettings(Lax):
    """The WAF tier: CRS tuning and what an API tier's normal traffic needs (docs/layers/sentinel.md)."""

    # CRS paranoia level (BLOCKING_PARANOIA): 2 and up catch more, with more false positives.
    paranoia: Annotated[int, Field(ge=1, le=4)] = 1
    # CRS anomaly score at which a request is refused (ANOMALY_INBOUND).
    anomaly_inbound: Annotated[int, Field(ge=1, le=100)] = 5
    # CRS anomaly score at which a response is refused (ANOMALY_OUTBOUND).
    anomaly_outbound: Annotated[int, Field(ge=1, le=100)] = 4
    # Methods the API accepts (CRS rule 911100 refuses the others).
    allowed_methods: Annotated[
        tuple[Annotated[str, AfterValidator(_method)], ...], BeforeValidator(_comma_list), Field(min_length=1)
    ] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    # CRS 4.28.0's defaults (crs-setup.conf.example, rule 900220) plus a REST/SCIM API's own.
    allowed_content_types: Annotated[
        tuple[Annotated[str, AfterValidator(_media_type)], ...], BeforeValidator(_comma_list), Field(min_length=1)
    ] = (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "text/xml",
        "application/xml",
        "application/soap+xml",
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/scim+json",
        "application/problem+json",
        "application/x-ndjson",
        "application/octet-stream",
        "application/pdf",
        "text/plain",
        "text/csv",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    )
    # Any request body (uploads included): nginx refuses larger ones with 413 before buffering.
    max_body_mb: Annotated[int, Field(ge=1, le=1024)] = 8
    # Bodies other than multipart file parts (JSON, forms): ModSecurity parses these whole.
    # Default: 2048, or all of maxBodyMb when that is smaller.
    max_nonfile_body_kb: Annotated[int, Field(ge=64, le=65536)] | None = None
    # Arguments ModSecurity accepts in one request (each JSON leaf is one); more is a 400.
    max_arguments: Annotated[int, Field(ge=100, le=100000)] = 10000
    # Requests one WAF pod holds at once (nginx worker_connections is twice this): with
    # maxBodyMb it sizes the pod's request-body volume. More load means more replicas.
    max_concurrent_requests: Annotated[int, Field(ge=16, le=4096)] = 256
    # Responses the outbound (data-leak) rules inspect.
    response_mime_types: Annotated[
        tuple[Annotated[str, AfterValidator(_media_type)], ...], BeforeValidator(_comma_list), Field(min_length=1)
    ] = ("text/plain", "text/html", "text/xml", "application/json", "application/problem+json")
    # Sources whose X-Forwarded-For the WAF believes: the edge controller's pods.
    trusted_proxies: Annotated[
        tuple[Annotated[str, AfterValidator(_network)], ...], BeforeValidator(_comma_list), Field(min_length=1)
    ] = PRIVATE_NETWORKS
    # Exact paths where the GraphQL document is kept from the CRS rules that read it as SQL or shell.
    graphql_paths: Annotated[tuple[Annotated[str, AfterValidator(_url_path)], ...], BeforeValidator(_comma_list)] = (
        "/graphql",
    )
    # The WAF's own autoscaling (when an autoscale targets what it protects): CPU utilisation
    # target and ceiling (default: the target's replicas_max); its floor is the target's floor.
    cpu_utilization: Annotated[int, Field(ge=10, le=100)] = 70
    # The WAF's replica ceiling when it autoscales (default: the target's replicas_max).
    max_replicas: Annotated[int, Field(ge=1, le=1000)] | None = None
    # Tenant resolution at the edge (docs/layers/sentinel.md): the header the API gets the tenant id in.
    tenant_header: Annotated[str, AfterValidator(_tenant_header)] = "X-Tenant-Id"
    # Requests per second and burst per tenant, by plan; tenantRateLimits overrides them by tenant id.
    rate_limits: PlanRateLimits = PlanRateLimits()
    # Per tenant id (a tenant in `tenants`): overrides its plan's budget.
    tenant_rate_limits: dict[Annotated[str, AfterValidator(_dns_label)], RateLimit] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _limits_agree(self):
        """maxNonfileBodyKb is at most maxBodyMb."""
        # ModSecurity's non-file limit is part of the whole body; above it, nginx refuses first anyway.
        if self.max_nonfile_body_kb is not None and self.max_nonfile_body_kb > self.max_body_mb * 1024:
            raise field_error(
                "maxNonfileBodyKb",
                f"must be at most maxBodyMb ({self.max_body_mb} MiB = {self.max_body_mb * 1024} KiB) (got "
                f"{self.max_nonfile_body_kb})",
            )
        return self

    @property
    def nonfile_body_kb(self) -> int:
        return self.max_nonfile_body_kb or min(2048, self.max_body_mb * 1024)


class AutoscaleSettings(Lax):
    """Where the autoscalers' `requests` metric comes from."""

    # Where KEDA's Prometheus trigger queries (unset: the insight layer's Prometheus).
    prometheus_url: str | None = None
    # {namespace} and {service} are filled per target; the result is requests/s summed over the service.
    # [2m]: at the 30 s scrape interval a window holds about four samples; [1m] holds at most two
    # (Prometheus 3 range selectors are left-open), and one late scrape leaves rate() empty.
    requests_query: str = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}"}}[2m]))'


def _absolute_path(value: str) -> str:
    """An absolute URL path ('/metrics')."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute URL path; expected something like '/metrics'")
    return value


class InsightSettings(Sized):
    """The insight layer's Prometheus: volume, scrape path, who may query it, alert thresholds."""

    # Prometheus volume per replica, GiB (retentionSize is 85 % of it).
    storage_gb: Annotated[int, Field(ge=1, le=65536)] = 50
    # The computes' metrics path.
    scrape_path: Annotated[str, AfterValidator(_absolute_path)] = "/metrics"
    # KEDA's Prometheus trigger queries from here (the autoscaler's `requests` metric).
    keda_namespace: Annotated[str, AfterValidator(_dns_label)] = "keda"
    # Grafana queries from here.
    grafana_namespace: Annotated[str, AfterValidator(_dns_label)] = "monitoring"
    # Alert threshold per tenant (with `alertas`): the share of 5xx responses.
    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    # Alert threshold per tenant (with `alertas`): p99 latency, seconds.
    latency_p99_seconds: Annotated[float, Field(gt=0)] = 1.0
    cpu_request: str = "250m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"
    # The one way to let the metrics volume go with its Prometheus (docs/changing-a-running-platform.md).
    purge: bool = False


class ArchiveSettings(Sized):
    """The archive layer's object store (SeaweedFS)."""

    # With `publico: true` the tenant bucket is served read-only at <publicHost>.<gateway base>.
    public_host: Annotated[str, AfterValidator(_dns_label)] = "files"
    # The one way to let the files go: Pulumi deletes the StatefulSet and Kubernetes its PVC
    # (docs/changing-a-running-platform.md).
    purge: bool = False


GO_DURATION = re.compile(r"^([0-9]+(ns|us|ms|s|m|h))+$")


def _go_duration(value: str) -> str:
    """NATS and NACK read durations the Go way; days are not a unit there."""
    if not GO_DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like '720h', '90m' or '1h30m' (units: h, m, s, ms, us, ns)")
    return value


class BeaconSettings(Sized):
    """The beacon layer's NATS servers and lifecycle stream."""

    # JetStream volume per server, GiB.
    storage_gb: Annotated[int, Field(gt=0, le=65536)] = 10
    # The lifecycle stream keeps events this long (a Go duration).
    stream_max_age: Annotated[str, AfterValidator(_go_duration)] = "2160h"
    # ...and at most this many bytes (at most 90 % of the volume), discarding the oldest.
    stream_max_bytes: Annotated[int, Field(gt=0)] = 5 * 1024**3
    # A message id seen again within this window is dropped (a Go duration).
    stream_duplicate_window: Annotated[str, AfterValidator(_go_duration)] = "2m"
    # Namespace of the NACK controller, the only thing outside the fabric that reaches NATS.
    nack_namespace: Annotated[str, AfterValidator(_dns_label)] = "nack"
    # The one way to let the streams go with their servers (docs/changing-a-running-platform.md).
    purge: bool = False

    @model_validator(mode="after")
    def _stream_fits(self):
        """streamMaxBytes fits in 90 % of storageGb."""
        if self.stream_max_bytes > self.storage_gb * 1024**3 * 9 // 10:
            raise field_error(
                "streamMaxBytes", f"must fit in 90% of storageGb ({self.storage_gb} GiB) (got {self.stream_max_bytes})"
            )
        return self


class QuotaSettings(Lax):
    """The fabric namespace's ResourceQuota (Kubernetes quantities); NodePort and LoadBalancer Services are always 0."""

    requests_cpu: str = "32"
    requests_memory: str = "64Gi"
    limits_cpu: str = "64"
    limits_memory: str = "128Gi"
    pods: Annotated[int, Field(ge=1)] = 300
    requests_storage: str = "4Ti"
    persistent_volume_claims: Annotated[int, Field(ge=1)] = 40


def _no_pgaudit(value: dict) -> dict:
    """No `pgaudit.*` key: the `audit` section sets those."""
    # Otherwise `audit.database: false` would leave pgaudit loaded (CNPG loads it for any pgaudit.* key).
    own = sorted(k for k in value if k.startswith("pgaudit."))
    if own:
        raise ValueError(
            f"{', '.join(map(repr, own))}: pgaudit is set by the `audit` section (audit.database, "
            "audit.databaseClasses); remove it here"
        )
    return value


def _retention(value: str) -> str:
    """A Barman retention in days, weeks or months ('30d', '4w', '6m')."""
    if not re.fullmatch(r"[1-9][0-9]*[dwm]", value):
        raise ValueError(f"{value!r} is not a Barman retention; use days, weeks or months like '30d', '4w', '6m'")
    return value


def _s3_endpoint(value: str) -> str:
    """An S3 API endpoint: https (backups carry every tenant's data), a host, an optional port, nothing else."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"{value!r} is not a URL; use e.g. 'https://s3.eu-west-1.amazonaws.com'") from None
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https URL with a host; use e.g. 'https://s3.eu-west-1.amazonaws.com'")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{value!r}: only scheme, host and port; the bucket goes in `bucket`, credentials in a Secret")
    return value


S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _s3_bucket(value: str) -> str:
    """An S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'."""
    if not S3_BUCKET.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')")
    return value


class BackupStoreSettings(Lax):
    """An S3-compatible store outside the cluster for the database's WAL and base backups."""

    # The store's S3 API, e.g. https://s3.eu-west-1.amazonaws.com.
    endpoint: Annotated[str, AfterValidator(_s3_endpoint)]
    # The bucket WAL and base backups go to.
    bucket: Annotated[str, AfterValidator(_s3_bucket)]
    # A Secret in the platform namespace, created by whoever owns the store's keys:
    # keys `accessKeyId` and `secretAccessKey`.
    credentials_secret: Annotated[str, AfterValidator(_dns_label)]
    # A Secret in the platform namespace holding the CA bundle (key `ca.crt`) when the
    # endpoint's certificate isn't signed by a public CA.
    ca_secret: Annotated[str, AfterValidator(_dns_label)] | None = None


def _server_name(value: str) -> str:
    """A backup directory this program writes: `<nome>-<suffix>` (or, before the suffix, `<nome>`)."""
    # CNPG cluster names are DNS labels of at most 50 characters (cloudnative-pg v1.30.0
    # internal/webhook/v1/cluster_webhook.go validateName), so every serverName the Datastore
    # ever archived to is a DNS-1123 label; anything else is not a directory of this program's.
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a backup directory of this program's (a DNS-1123 label like 'platform-db-x7k2m9qa': "
            "the serverName of the Cluster to restore, `kubectl get cluster <nome> -o "
            "jsonpath='{.spec.plugins[0].parameters.serverName}'`)"
        )
    return value


# RFC 3339 with its time zone: the form CNPG documents for `recoveryTarget.targetTime`
# (cloudnative-pg v1.30.0 docs/src/recovery.md, "Recovery targets"). A time without a zone is
# read as UTC there; refused here, since a restore to the wrong hour is found out too late.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _target_time(value: str) -> str:
    """An RFC 3339 time with its time zone, like '2026-11-30T08:15:00Z'."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        valid = False
    else:
        valid = bool(RFC3339.match(value))
    if not valid:
        raise ValueError(
            f"{value!r} is not an RFC 3339 time with a time zone; use e.g. '2026-11-30T08:15:00Z' or "
            "'2026-11-30T09:15:00+01:00'"
        )
    return value


class RecoverySettings(Lax):
    """Bootstrap the database from the backups of an earlier incarnation (docs/operations.md)."""

    # The backup directory to restore: the earlier Cluster's serverName.
    server_name: Annotated[str, AfterValidator(_server_name)]
    # Point-in-time recovery: replay WAL up to this RFC 3339 time (unset: to the end of the archive).
    target_time: Annotated[str, AfterValidator(_target_time)] | None = None


class DatastoreSettings(Sized):
    """The datastore layer's CloudNativePG cluster: operator, resources, backups, connections."""

    # The CloudNativePG operator's namespace (let into the database pods).
    operator_namespace: Annotated[str, AfterValidator(_dns_label)] = "cnpg-system"
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    # CNPG cron has a seconds field: 03:00:00 every day.
    backup_schedule: str = "0 0 3 * * *"
    # How long base backups and WAL are kept.
    backup_retention: Annotated[str, AfterValidator(_retention)] = "30d"
    # Server connections per login role across all poolers: each enterprise tenant's own, and the
    # shared router's (PgBouncer's limits are the same for every user; components/connections.py).
    enterprise_connection_limit: Annotated[int, Field(ge=1, le=10000)] = 50
    # PostgreSQL parameters (max_connections defaults to 300; a change restarts the instances).
    parameters: Annotated[dict[str, str], AfterValidator(_no_pgaudit)] = Field(default_factory=dict)
    # Unset: backups go to the in-cluster archive (the blueprint's archive resource).
    backup_store: BackupStoreSettings | None = None
    # Quorum commit on one standby (docs/layers/datastore.md); unset: on exactly when `ha` under multi-zona.
    synchronous: bool | None = None
    # The one way to let the database go: Pulumi deletes the Cluster, CNPG its PVCs
    # (docs/changing-a-running-platform.md).
    purge: bool = False
    # Unset: a new, empty database (initdb). Set: the Cluster is created by restoring these backups;
    # read only when the Cluster is created (docs/operations.md, "Backups and restore").
    recovery: RecoverySettings | None = None


# pgaudit's `pgaudit.log` classes (pgaudit README); `-<class>` subtracts one, as in 'all, -misc'.
PGAUDIT_CLASSES = ("read", "write", "function", "role", "ddl", "misc", "misc_set", "all")
# ModSecurity audit log parts (SecAuditLogParts); A and Z delimit every record.
WAF_LOG_PARTS = "ABCDEFGHIJKZ"


def _pgaudit_classes(value: tuple) -> tuple:
    """pgaudit classes (read, write, function, role, ddl, misc, misc_set, all), '-' subtracts one, none twice."""
    for item in value:
        if item.removeprefix("-") not in PGAUDIT_CLASSES:
            raise ValueError(
                f"{item!r} is not a pgaudit class; accepted: {', '.join(PGAUDIT_CLASSES)} (a leading '-' subtracts a "
                "class, e.g. 'all, -misc')"
            )
    repeated = sorted({item for item in value if value.count(item) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
    return value


def _waf_log_parts(value: str) -> str:
    """ModSecurity audit log parts A-K and Z, each at most once, always with A and Z."""
    if set(value) - set(WAF_LOG_PARTS) or len(set(value)) != len(value) or not {"A", "Z"} <= set(value):
        raise ValueError(
            f"{value!r} is not a ModSecurity audit log parts string; accepted letters: {' '.join(WAF_LOG_PARTS)}, "
            "each at most once, A and Z always present (e.g. 'AHZ')"
        )
    return value


class AuditSettings(Lax):
    """Audit sources, each on unless switched off (docs/audit.md says why platform-wide)."""

    # pgaudit on the datastore's PostgreSQL: what `pgaudit.log` records.
    database: bool = True
    # The pgaudit.log classes recorded (read is left out: every SELECT).
    database_classes: Annotated[
        tuple[str, ...], BeforeValidator(_comma_list), Field(min_length=1), AfterValidator(_pgaudit_classes)
    ] = ("ddl", "role", "write")
    # ModSecurity's audit log (JSON on the WAF's stdout): which transactions and which parts.
    waf: bool = True
    # A: client, time, method, URI, status; H: the rules that matched. Request headers (B)
    # carry Authorization and Cookie values and bodies (C, E, I) tenant data; ModSecurity v3
    # cannot redact them, so they are left out unless a stack asks for them.
    waf_log_parts: Annotated[str, AfterValidator(_waf_log_parts)] = "AHZ"
    # The kind cluster's API-server audit log (deploy/audit-policy.yaml). Read by `make up`
    # (`python -m components kind-config`) when it creates the cluster, not by the Pulumi
    # program: an existing cluster keeps the flags it was created with.
    kubernetes: bool = True

    @property
    def pgaudit_log(self) -> str:
        """The `pgaudit.log` parameter value."""
        return ",".join(self.database_classes)


def _issuer_url(value: str) -> str:
    """An OpenID Provider issuer: https, a host, no query/fragment/credentials. No network calls."""
    example = (
        "e.g. 'https://login.acme.io/realms/admin' (exactly as the IdP's /.well-known/openid-configuration states it)"
    )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"{value!r} is not a URL; {example}") from None
    if parts.scheme == "http":
        raise ValueError(
            f"{value!r} uses http; the issuer must be an https URL (the IdP's keys and the client secret travel over "
            "it)"
        )
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https URL with a host; {example}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"{value!r}: an issuer URL has no query, fragment or credentials (OpenID Connect Discovery 1.0 §2)"
        )
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        if not all(HOST_LABEL.match(label) for label in parts.hostname.split(".")):
            raise ValueError(f"{value!r}: {parts.hostname!r} is not a valid host name; {example}") from None
    return value


def _email_domain(value: str) -> str:
    """An email domain ('acme.io'), or '*' for any address the IdP verified."""
    if value == "*":
        return value
    if "@" in value:
        raise ValueError(
            f"{value!r} is not an email domain; write the part after '@' (e.g. 'acme.io'), or '*' for any address "
            "the IdP verified"
        )
    try:
        return valid_hostname(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an email domain; expected a domain like 'acme.io', or '*' for any address the IdP "
            "verified"
        ) from None


def _group(value: str) -> str:
    """A group name: non-empty, no ','."""
    # oauth2-proxy reads OAUTH2_PROXY_ALLOWED_GROUPS as a comma-separated list.
    if not value.strip() or "," in value:
        raise ValueError(f"{value!r} is not a group name (non-empty, no ',')")
    return value


def _client_id(value: str) -> str:
    """An OAuth client id: non-empty, no spaces."""
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{value!r} is not an OAuth client id (non-empty, no spaces)")
    return value


class OidcSettings(Lax):
    """The OpenID Connect client the admin UI's login proxy uses (docs/sso.md)."""

    # The IdP's issuer exactly as its /.well-known/openid-configuration states it; the proxy fetches
    # the discovery document when it starts.
    issuer_url: Annotated[str, AfterValidator(_issuer_url)]
    # The OIDC client registered for the admin UI (redirect URI https://<web nome>.<base>/oauth2/callback).
    client_id: Annotated[str, AfterValidator(_client_id)]
    # Masked in reprs and errors; the stack must hold it as a Pulumi secret (load_inputs checks).
    client_secret: SecretStr
    # Who may sign in: email domains (with allowedGroups too, a user needs both).
    email_domains: tuple[Annotated[str, AfterValidator(_email_domain)], ...] = ()
    # Who may sign in: groups in the ID token's groupsClaim.
    allowed_groups: tuple[Annotated[str, AfterValidator(_group)], ...] = ()
    # The ID token claim that lists the user's groups.
    groups_claim: Annotated[str, Field(min_length=1)] = "groups"

    @model_validator(mode="after")
    def _restricted(self) -> OidcSettings:
        """emailDomains or allowedGroups is set, and clientSecret is not empty."""
        # Without either, oauth2-proxy would let in every account the IdP knows.
        if not self.email_domains and not self.allowed_groups:
            raise field_error(
                "emailDomains",
                "set emailDomains and/or allowedGroups: who may sign in to the admin UI ('*' admits every verified "
                "email of the IdP)",
            )
        if not self.client_secret.get_secret_value():
            raise field_error("clientSecret", "must not be empty")
        return self

    @property
    def issuer_port(self) -> int:
        return urlsplit(self.issuer_url).port or 443


# Layers whose data leaves with them only under their own `purge` (docs/changing-a-running-platform.md).
PURGEABLE = ("datastore", "archive", "beacon", "insight")


class Settings(Lax):
    # The blueprint file, relative to the project.
    blueprint: str = "blueprints/b2b-platform.json"
    # The platform's tenants (docs/tenants.md).
    tenants: tuple[Tenant, ...] = ()
    # Offboarded, not yet purged: their roles stay as tombstones (docs/tenants.md, offboarding).
    removed_tenants: tuple[Annotated[str, AfterValidator(_dns_label)], ...] = ()
    # Removed tenants whose retained data may be dropped, after tenancy.purge_tenant (moved here from removedTenants).
    purge_tenants: tuple[Annotated[str, AfterValidator(_dns_label)], ...] = ()
    # Per compute of the blueprint, by its nome.
    computes: dict[str, ComputeSettings] = Field(default_factory=dict)
    # Overrides a pinned image by its key in components/images.py.
    images: dict[str, str] = Field(default_factory=dict)
    # Storage class of the stateful layers' volumes (unset: the cluster's default).
    storage_class: str | None = None
    # The cluster's DNS domain (kubelet `clusterDomain`), in every in-cluster address the platform writes.
    cluster_domain: ObjectName = meta.CLUSTER_DOMAIN
    # Pulumi `protect` on stateful resources (the kind stack turns it off); their data is retained on delete
    # either way.
    protect: bool = True
    # Install the cluster add-ons (operators, edge controller; the kind stack turns it on).
    addons: bool = False
    edge: EdgeSettings = EdgeSettings()
    sentinel: SentinelSettings = SentinelSettings()
    autoscale: AutoscaleSettings = AutoscaleSettings()
    quota: QuotaSettings = QuotaSettings()
    insight: InsightSettings = InsightSettings()
    datastore: DatastoreSettings = DatastoreSettings()
    audit: AuditSettings = AuditSettings()
    # Unset: the admin UI is served unauthenticated, with a warning.
    oidc: OidcSettings | None = None
    # The API server's endpoint addresses as pods reach them after kube-proxy's DNAT
    # (docs/network.md); every layer that talks to the API opens 443/6443 to this range only.
    # Unset: any address on those ports, with a warning.
    api_server_cidr: Annotated[str, AfterValidator(_network)] | None = None
    archive: ArchiveSettings = ArchiveSettings()
    beacon: BeaconSettings = BeaconSettings()

    def image(self, key: str) -> str:
        return self.images.get(key, IMAGES[key])


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_settings(config: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> Settings:
    """`config` maps keys without the `b2b-platform:` prefix to their values; `secret_keys`
    names those the stack holds encrypted (`pulumi config set --secret`)."""
    raw = {key: _decode(value) for key, value in config.items()}
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(from_validation_error(exc, model=Settings)) from None
    if settings.oidc is not None and "oidc" not in set(secret_keys):
        raise InvalidInput(
            [
                Problem(
                    "oidc.clientSecret",
                    "must be a Pulumi secret, not plain text in the stack file: "
                    "pulumi config set --secret --path 'b2b-platform:oidc.clientSecret' <secret>",
                )
            ]
        )
    return settings


def cross_check_settings(settings: Settings, bp: Blueprint) -> list[Problem]:
    problems: list[Problem] = []
    computes = {c.nome for c in bp.of("compute")}
    reserved = RESERVED_TENANT_IDS | {r.nome for r in bp.recursos}
    if bp.one("archive"):
        reserved |= {settings.archive.public_host}  # the archive's public host, whether or not it is public today
        if len(settings.archive.public_host) < 2 and bp.one("gateway"):
            # Same tie as a one-letter web compute (blueprint.py): rule length is Traefik's priority.
            problems.append(
                Problem(
                    "archive.publicHost",
                    f"{settings.archive.public_host!r} would tie with the tenant wildcard in the edge controller's "
                    "rule-length priority; use at least two characters",
                )
            )
    gateway = bp.one("gateway")
    base = gateway.config.base_domain if gateway else None
    problems += previous_domain_problems(settings.edge.previous_domains, base)
    # Every base domain a tenant is served under: its `<id>.<domain>` hosts, none a custom domain.
    bases = (base, *settings.edge.previous_domains) if base else ()
    longest = max(bases, key=len, default=None)

    for key in sorted(settings.images):
        if key not in IMAGES:
            problems.append(Problem(f"images.{key}", f"unknown image key; accepted: {', '.join(sorted(IMAGES))}"))
    for key in sorted(settings.computes):
        if key not in computes:
            problems.append(
                Problem(
                    f"computes.{key}",
                    f"no compute named {key!r} in the blueprint (computes: {', '.join(sorted(computes)) or 'none'})",
                )
            )

    ids: dict[str, int] = {}
    # Overlap is checked through parent domains, not pairwise, so thousands of domains stay linear.
    owners: dict[str, tuple[str, int, int]] = {}
    below: dict[str, list[str]] = {}
    for i, t in enumerate(settings.tenants):
        if t.id in ids:
            problems.append(Problem(f"tenants[{i}].id", f"duplicate tenant id {t.id!r} (also tenants[{ids[t.id]}])"))
        ids.setdefault(t.id, i)
        if t.id in ROLE_RESERVED_TENANT_IDS:
            problems.append(
                Problem(
                    f"tenants[{i}].id",
                    f"{t.id!r} is reserved: its database role {tenant_role(t.id)} is one of the platform's own "
                    f"({', '.join(sorted(tenant_role(r) for r in ROLE_RESERVED_TENANT_IDS))})",
                )
            )
        elif t.id in reserved:
            problems.append(
                Problem(
                    f"tenants[{i}].id", f"{t.id!r} is reserved (platform hosts and resource names cannot be tenant ids)"
                )
            )
        if longest and len(f"{t.id}.{longest}") > 253:
            problems.append(
                Problem(
                    f"tenants[{i}].id", f"host {t.id}.{longest} would be longer than 253 characters; use a shorter id"
                )
            )
        if t.previous_plan == t.plan:
            problems.append(
                Problem(
                    f"tenants[{i}].previousPlan",
                    f"{t.previous_plan!r} is the tenant's plan already; previousPlan names the plan a switch comes "
                    "from (business or enterprise, not plan): remove it (docs/layers/datastore.md, switching plans)",
                )
            )
        if t.login_version and not t.own_login:
            problems.append(
                Problem(
                    f"tenants[{i}].loginVersion",
                    f"{t.login_version} rotates an enterprise tenant's own database login; {t.id!r} is {t.plan} (it "
                    "logs in as the shared router): remove it or make the tenant enterprise",
                )
            )
        if t.domains and base is None:
            problems.append(Problem(f"tenants[{i}].domains", "custom domains need a gateway resource in the blueprint"))
        for j, domain in enumerate(t.domains):
            path = f"tenants[{i}].domains[{j}]"
            for own in bases:
                if domain == own or domain.endswith("." + own):
                    problems.append(
                        Problem(
                            path,
                            f"{domain!r} is under the platform's own domain {own!r}; tenants get <id>.{own} already",
                        )
                    )
            labels = domain.split(".")
            parents = [".".join(labels[k:]) for k in range(1, len(labels))]
            clashes = [d for d in (domain, *parents) if d in owners] + below.get(domain, [])
            for other in sorted(clashes, key=lambda d: owners[d][1:]):
                owner, oi, oj = owners[other]
                what = "is already claimed" if domain == other else f"overlaps {other!r}, claimed"
                problems.append(Problem(path, f"{domain!r} {what} by tenant {owner!r} (tenants[{oi}].domains[{oj}])"))
            if domain not in owners:
                owners[domain] = (t.id, i, j)
                for parent in parents:
                    below.setdefault(parent, []).append(domain)

    removed: dict[str, int] = {}
    for i, tid in enumerate(settings.removed_tenants):
        if tid in removed:
            problems.append(
                Problem(f"removedTenants[{i}]", f"duplicate id {tid!r} (also removedTenants[{removed[tid]}])")
            )
        removed.setdefault(tid, i)
        if tid in ids:
            problems.append(
                Problem(
                    f"tenants[{ids[tid]}].id",
                    f"{tid!r} was removed and its data is not purged yet (removedTenants[{i}]): a new tenant "
                    "under this id would get the old one's schema, rows and role; choose another id, or purge "
                    "it first (docs/tenants.md, purge)",
                )
            )
    for i, tid in enumerate(settings.purge_tenants):
        if tid in removed:
            problems.append(
                Problem(
                    f"purgeTenants[{i}]",
                    f"{tid!r} is also in removedTenants[{removed[tid]}]: after tenancy.purge_tenant('{tid}') move it "
                    "from removedTenants to purgeTenants",
                )
            )
        if tid in ids:
            problems.append(
                Problem(
                    f"purgeTenants[{i}]",
                    f"{tid!r} is still an active tenant; remove it from tenants before purging its data",
                )
            )

    # A purge is a deliberate removal: it acts only once `protect` no longer refuses the delete,
    # so a purge flag left on a protected stack would be a trap waiting for the next unprotect.
    purging = [layer for layer in PURGEABLE if getattr(settings, layer).purge]
    if settings.protect:
        problems += [
            Problem(
                f"{layer}.purge",
                "true needs protect: false (a protected stack refuses every delete); set protect: false for the "
                "purge and back afterwards, or remove the purge",
            )
            for layer in purging
        ]

    datastore = bp.one("datastore")
    recovery = settings.datastore.recovery
    if recovery and not (settings.datastore.backup_store or bp.one("archive")):
        problems.append(
            Problem(
                "datastore.recovery",
                f"serverName {recovery.server_name!r} is read from the backup store, and there is none: add an "
                "archive resource to the blueprint or set datastore.backupStore (the store the backups went to)",
            )
        )
    if recovery and not datastore:
        problems.append(Problem("datastore.recovery", "the blueprint has no datastore resource to restore; remove it"))
    if datastore:
        problems += connection_problems(settings, datastore.config.ha)
        if settings.datastore.synchronous and not datastore.config.ha:
            problems.append(
                Problem(
                    "datastore.synchronous",
                    f"true needs standbys: datastore {datastore.nome!r} has ha: false (one instance); set ha: true "
                    "or remove it",
                )
            )
        for i, t in enumerate(settings.tenants):
            if len(t.id) > TENANT_ID_MAX_FOR_DATABASE:
                problems.append(
                    Problem(
                        f"tenants[{i}].id",
                        f"{t.id!r} is {len(t.id)} characters; with a datastore, tenant ids are at most "
                        f"{TENANT_ID_MAX_FOR_DATABASE} (PostgreSQL role names are limited to 63)",
                    )
                )
        extra = len(settings.removed_tenants) + len(settings.purge_tenants)
        if len(settings.tenants) + extra > MAX_DATABASE_TENANTS:
            problems.append(
                Problem(
                    "tenants",
                    f"{len(settings.tenants)} tenants (+{extra} removed or purged) exceed the {MAX_DATABASE_TENANTS} "
                    "one shared database holds (its Cluster and Database objects must stay under the 1.5 MiB "
                    "Kubernetes object limit)",
                )
            )
    if settings.oidc is not None:
        webs = [c.nome for c in bp.of("compute") if c.config.subtipo == "web"]
        if not webs:
            problems.append(
                Problem("oidc", "the blueprint has no web compute for the login proxy to protect; remove oidc")
            )
        elif base is None:
            problems.append(
                Problem(
                    "oidc",
                    "the login proxy needs a gateway resource: its redirect URL is <web compute>.<gateway base "
                    "domain>/oauth2/callback",
                )
            )
        names = {r.nome for r in bp.recursos}
        for sso in Refs.of(bp, sso=True).ssos:
            if sso.name in names:
                problems.append(
                    Problem(
                        "oidc",
                        f"resource name {sso.name!r} is taken; the login proxy of web compute {sso.target!r} is "
                        "named so",
                    )
                )

    for i, r in enumerate(bp.recursos):
        if (
            r.tipo == "autoscale"
            and r.config.metrica == "requests"
            and not bp.of("insight")
            and not settings.autoscale.prometheus_url
        ):
            problems.append(
                Problem(
                    f"recursos[{i}].config.metrica",
                    "'requests' needs Prometheus: add an insight resource or set autoscale.prometheusUrl",
                )
            )
    # Imported here: the Sentinel builds on this module's settings.
    from .sentinel import config_problems

    return problems + rate_limit_problems(settings) + config_problems(bp, settings)


def rate_limit_problems(settings: Settings) -> list[Problem]:
    """An override for a tenant that is not configured would silently never apply."""
    ids = {t.id for t in settings.tenants}
    return [
        Problem(
            f"sentinel.tenantRateLimits.{tid}",
            f"no tenant {tid!r} in tenants (configured: {', '.join(sorted(ids)) or 'none'}); "
            "an override is keyed by a configured tenant id",
        )
        for tid in sorted(settings.sentinel.tenant_rate_limits)
        if tid not in ids
    ]


def previous_domain_problems(previous: tuple[str, ...], base: str | None) -> list[Problem]:
    if previous and base is None:
        return [Problem("edge.previousDomains", "previous base domains need a gateway resource in the blueprint")]
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for k, domain in enumerate(previous):
        path = f"edge.previousDomains[{k}]"
        if domain == base:
            problems.append(
                Problem(
                    path, f"{domain!r} is the gateway's current domain; list only the base domains it served before"
                )
            )
        elif domain in seen:
            problems.append(Problem(path, f"duplicate domain {domain!r} (also edge.previousDomains[{seen[domain]}])"))
        seen.setdefault(domain, k)
    return problems


def connection_budget(settings: Settings, ha: bool) -> ConnectionBudget:
    """The datastore's budget; `max_connections` must already be an integer (connection_problems)."""
    ds = settings.datastore
    max_connections = max_connections_of(ds.parameters)
    assert isinstance(max_connections, int)
    enterprise = sum(1 for t in settings.tenants if t.own_login)
    return ConnectionBudget(max_connections, ds.enterprise_connection_limit, 1 + enterprise, pooler_instances(ha))


def connection_problems(settings: Settings, ha: bool) -> list[Problem]:
    max_connections = max_connections_of(settings.datastore.parameters)
    if not isinstance(max_connections, int):
        return [Problem("datastore.parameters.max_connections", f"{max_connections!r} is not a whole number")]
    found = connection_budget(settings, ha).problem()
    return [Problem("datastore.enterpriseConnectionLimit", found)] if found else []


@dataclass(frozen=True)
class Inputs:
    blueprint: Blueprint
    settings: Settings


def load_inputs(
    config: Mapping[str, Any], root: str = ".", blueprint_path: str | None = None, secret_keys: Iterable[str] = ()
) -> Inputs:
    """Validate stack config and the blueprint it names; raise InvalidInput with every problem."""
    settings = parse_settings(config, secret_keys)
    path = blueprint_path or settings.blueprint
    full = path if path.startswith("/") else f"{root}/{path}"
    try:
        with open(full, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InvalidInput([Problem("blueprint", f"cannot read {path!r}: {exc.strerror}")]) from None
    bp = load_blueprint(text)
    problems = cross_check_settings(settings, bp)
    if problems:
        raise InvalidInput(problems)
    return Inputs(bp, settings)
