"""Stack configuration (`b2b-platform:*` keys) and the tenant model, validated.

Config values reach the program as strings (Pulumi passes objects as JSON) or, from a
stack YAML file read by the CLI, as native values; both go through `parse_settings`.
Keys are camelCase like every Pulumi config key; error paths use them as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Mapping, Optional

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from .blueprint import Blueprint, Strict, _dns_label, field_error, load_blueprint, valid_hostname
from .images import IMAGES
from .problems import InvalidInput, Problem, from_validation_error

PROJECT = "b2b-platform"
# Hosts the platform serves itself or that would confuse customers if a tenant held them.
RESERVED_TENANT_IDS = frozenset(
    {"www", "api", "app", "admin", "auth", "login", "sso", "status", "static", "assets", "cdn", "mail", "smtp",
     "ftp", "ns1", "ns2", "dashboard", "grafana", "prometheus", "metrics", "docs", "help", "support", "billing"}
)


class Lax(Strict):
    """Settings accept Pulumi's string-typed config ("true", "3") but still no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, alias_generator=to_camel, populate_by_name=False)


class Tenant(Lax):
    id: Annotated[str, AfterValidator(_dns_label)]
    plan: Literal["business", "enterprise"]
    isolation: Literal["schema", "rls"]
    domains: tuple[Annotated[str, AfterValidator(valid_hostname)], ...] = ()
    # Only the shared "pool" tier exists today; a "silo" tier (own namespace, compute,
    # quota and database) becomes another value here and another branch in Platform.
    tier: Literal["pool"] = "pool"


class ComputeSettings(Lax):
    image: Optional[str] = None
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    args: Optional[tuple[str, ...]] = None
    probe_path: str = "/health"
    cpu_request: str = "100m"
    memory_request: str = "128Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"


class EdgeSettings(Lax):
    ingress_class: str = "traefik"
    controller_namespace: Annotated[str, AfterValidator(_dns_label)] = "traefik"
    cluster_issuer: str = "b2b-local-ca"
    custom_domain_issuer: Optional[str] = None


class SentinelSettings(Lax):
    paranoia: Annotated[int, Field(ge=1, le=4)] = 1
    anomaly_inbound: Annotated[int, Field(ge=1, le=100)] = 5
    anomaly_outbound: Annotated[int, Field(ge=1, le=100)] = 4


class AutoscaleSettings(Lax):
    prometheus_url: Optional[str] = None
    # {namespace} and {service} are filled per target; the result is requests/s summed over the service.
    requests_query: str = 'sum(rate(http_requests_total{{namespace="{namespace}",service="{service}"}}[1m]))'


class ArchiveSettings(Lax):
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    # With `publico: true` the tenant bucket is served read-only at <publicHost>.<gateway base>.
    public_host: Annotated[str, AfterValidator(_dns_label)] = "files"
    # Delete the PVC when the StatefulSet goes (set it, `pulumi up`, then remove the resource).
    purge: bool = False


GO_DURATION = re.compile(r"^([0-9]+(ns|us|ms|s|m|h))+$")


def _go_duration(value: str) -> str:
    """NATS and NACK read durations the Go way; days are not a unit there."""
    if not GO_DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like '720h', '90m' or '1h30m' (units: h, m, s, ms, us, ns)")
    return value


class BeaconSettings(Lax):
    cpu_request: str = "100m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    storage_gb: Annotated[int, Field(gt=0, le=65536)] = 10
    stream_max_age: Annotated[str, AfterValidator(_go_duration)] = "2160h"
    stream_max_bytes: Annotated[int, Field(gt=0)] = 5 * 1024**3
    stream_duplicate_window: Annotated[str, AfterValidator(_go_duration)] = "2m"
    # Namespace of the NACK controller, the only thing outside the fabric that reaches NATS.
    nack_namespace: Annotated[str, AfterValidator(_dns_label)] = "nack"
    purge: bool = False

    @model_validator(mode="after")
    def _stream_fits(self):
        if self.stream_max_bytes > self.storage_gb * 1024**3 * 9 // 10:
            raise field_error("streamMaxBytes", f"must fit in 90% of storageGb ({self.storage_gb} GiB) (got {self.stream_max_bytes})")
        return self


class QuotaSettings(Lax):
    requests_cpu: str = "32"
    requests_memory: str = "64Gi"
    limits_cpu: str = "64"
    limits_memory: str = "128Gi"
    pods: Annotated[int, Field(ge=1)] = 300
    requests_storage: str = "4Ti"
    persistent_volume_claims: Annotated[int, Field(ge=1)] = 40


class Settings(Lax):
    blueprint: str = "blueprints/b2b-platform.json"
    tenants: tuple[Tenant, ...] = ()
    purge_tenants: tuple[Annotated[str, AfterValidator(_dns_label)], ...] = ()
    computes: dict[str, ComputeSettings] = {}
    images: dict[str, str] = {}
    storage_class: Optional[str] = None
    protect: bool = True
    addons: bool = False
    edge: EdgeSettings = EdgeSettings()
    sentinel: SentinelSettings = SentinelSettings()
    autoscale: AutoscaleSettings = AutoscaleSettings()
    quota: QuotaSettings = QuotaSettings()
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


def parse_settings(config: Mapping[str, Any]) -> Settings:
    """`config` maps keys without the `b2b-platform:` prefix to their values."""
    raw = {key: _decode(value) for key, value in config.items()}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(from_validation_error(exc, model=Settings)) from None


def cross_check_settings(settings: Settings, bp: Blueprint) -> list[Problem]:
    problems: list[Problem] = []
    computes = {c.nome for c in bp.of("compute")}
    reserved = RESERVED_TENANT_IDS | {r.nome for r in bp.recursos}
    if bp.one("archive"):
        reserved |= {settings.archive.public_host}  # the archive's public host, whether or not it is public today
    gateway = bp.one("gateway")
    base = gateway.config.base_domain if gateway else None

    for key in sorted(settings.images):
        if key not in IMAGES:
            problems.append(Problem(f"images.{key}", f"unknown image key; accepted: {', '.join(sorted(IMAGES))}"))
    for key in sorted(settings.computes):
        if key not in computes:
            problems.append(Problem(f"computes.{key}", f"no compute named {key!r} in the blueprint (computes: {', '.join(sorted(computes)) or 'none'})"))

    ids: dict[str, int] = {}
    owners: dict[str, tuple[str, int, int]] = {}
    for i, t in enumerate(settings.tenants):
        if t.id in ids:
            problems.append(Problem(f"tenants[{i}].id", f"duplicate tenant id {t.id!r} (also tenants[{ids[t.id]}])"))
        ids.setdefault(t.id, i)
        if t.id in reserved:
            problems.append(Problem(f"tenants[{i}].id", f"{t.id!r} is reserved (platform hosts and resource names cannot be tenant ids)"))
        if t.domains and base is None:
            problems.append(Problem(f"tenants[{i}].domains", "custom domains need a gateway resource in the blueprint"))
        for j, domain in enumerate(t.domains):
            path = f"tenants[{i}].domains[{j}]"
            if base and (domain == base or domain.endswith("." + base)):
                problems.append(Problem(path, f"{domain!r} is under the platform's own domain {base!r}; tenants get <id>.{base} already"))
            for other, (owner, oi, oj) in owners.items():
                if domain == other or domain.endswith("." + other) or other.endswith("." + domain):
                    what = "is already claimed" if domain == other else f"overlaps {other!r}, claimed"
                    problems.append(Problem(path, f"{domain!r} {what} by tenant {owner!r} (tenants[{oi}].domains[{oj}])"))
            owners.setdefault(domain, (t.id, i, j))

    for i, tid in enumerate(settings.purge_tenants):
        if tid in ids:
            problems.append(Problem(f"purgeTenants[{i}]", f"{tid!r} is still an active tenant; remove it from tenants before purging its data"))

    for i, r in enumerate(bp.recursos):
        if r.tipo == "autoscale" and r.config.metrica == "requests" and not bp.of("insight") and not settings.autoscale.prometheus_url:
            problems.append(Problem(f"recursos[{i}].config.metrica", "'requests' needs Prometheus: add an insight resource or set autoscale.prometheusUrl"))
    return problems


@dataclass(frozen=True)
class Inputs:
    blueprint: Blueprint
    settings: Settings


def load_inputs(config: Mapping[str, Any], root: str = ".", blueprint_path: Optional[str] = None) -> Inputs:
    """Validate stack config and the blueprint it names; raise InvalidInput with every problem."""
    settings = parse_settings(config)
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
