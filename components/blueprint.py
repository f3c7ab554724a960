"""The Tesserra blueprint, as the vendor writes it (Portuguese keys), validated.

`load_blueprint(text)` returns a frozen `Blueprint` or raises `InvalidInput` listing
every problem as `path: message`. Nothing here touches Pulumi or the network.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .problems import InvalidInput, Problem, from_validation_error

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

TIPOS = ("fabric", "compute", "datastore", "archive", "beacon", "sentinel", "gateway", "autoscale", "insight")
# cpu/memory thresholds are utilisation percentages; requests is requests/s per replica.
LIMIAR_RANGES = {"cpu": (1, 100), "memory": (1, 100), "requests": (1, 100_000)}


class Strict(BaseModel):
    """Frozen, no coercion, no unknown keys (the error lists the accepted ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=False)


def field_error(field: str, message: str) -> PydanticCustomError:
    """A cross-field error reported at `field` (problems.py moves it into the path)."""
    return PydanticCustomError("field_error", message, {"field": field})


def _dns_label(value: str) -> str:
    """A DNS-1123 label: lowercase letters, digits and '-', at most 63 characters."""
    if not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def valid_hostname(value: str, allow_wildcard: bool = False) -> str:
    """A lowercase DNS name with at least two labels; `*.` only as the first label."""
    name = value[2:] if allow_wildcard and value.startswith("*.") else value
    labels = name.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(HOST_LABEL.match(label) for label in labels):
        accepted = (
            "a host like 'app.acme.io' or a wildcard like '*.app.acme.io'"
            if allow_wildcard
            else "a host like 'portal.customer.com'"
        )
        raise ValueError(f"{value!r} is not a valid host name; expected {accepted}")
    return value


def _private_cidr(value: str) -> str:
    """A private IPv4 network in CIDR form, inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16."""
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 network in CIDR form like '10.50.0.0/16' ({exc})") from None
    if not network.is_private or network.prefixlen < 8:
        raise ValueError(
            f"{value!r} is not a private network; use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
        )
    return value


Nome = Annotated[str, AfterValidator(_dns_label)]
Size = Annotated[int, Field(gt=0, le=65536)]


class FabricConfig(Strict):
    # The private network beside the cluster that only the computes may reach.
    cidr: Annotated[str, AfterValidator(_private_cidr)]
    # The edge controller reaches the platform's entry points (WAF, login proxies, public computes).
    publica: bool


class ComputeConfig(Strict):
    # api: the tenants' API behind *.<base>; web: an admin UI at <nome>.<base>.
    subtipo: Literal["api", "web"]
    # Replica floor, and ceiling when an autoscale targets the compute.
    replicas_min: Annotated[int, Field(ge=1, le=1000)]
    replicas_max: Annotated[int, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _bounds(self):
        """replicas_min is at most replicas_max."""
        if self.replicas_max is not None and self.replicas_min > self.replicas_max:
            raise field_error(
                "replicas_min", f"must be <= replicas_max ({self.replicas_max}) (got {self.replicas_min})"
            )
        return self

    @property
    def max_replicas(self) -> int:
        return self.replicas_max if self.replicas_max is not None else self.replicas_min


class DatastoreConfig(Strict):
    engine: Literal["postgres"]
    # Three instances (a primary and two standbys) instead of one.
    ha: bool
    # Volume per instance, GiB.
    tamanho_gb: Size


class ArchiveConfig(Strict):
    # The object store's volume, GiB.
    tamanho_gb: Size
    # Serve the tenant bucket read-only at files.<gateway base> (needs a gateway and a public fabric).
    publico: bool


class BeaconConfig(Strict):
    # Persistent streams (a volume per server, NACK Stream and Consumers) instead of core NATS only.
    jetstream: bool


class SentinelConfig(Strict):
    # bloquear: refuse requests over the anomaly threshold (403); detectar: log only.
    modo: Literal["bloquear", "detectar"]
    # The compute the WAF fronts.
    alvo_recurso_id: Nome


class GatewayConfig(Strict):
    # The tenants' wildcard domain, *.<base>; tenants get <id>.<base>, web computes <nome>.<base>.
    dominio: Annotated[str, AfterValidator(lambda v: valid_hostname(v, allow_wildcard=True))]
    # cert-manager certificates and HTTPS; false serves plain HTTP (with a warning).
    tls: bool

    @property
    def base_domain(self) -> str:
        return self.dominio.removeprefix("*.")


class AutoscaleConfig(Strict):
    # The compute it scales, between its replicas_min and replicas_max.
    alvo_recurso_id: Nome
    # cpu/memory: an HPA on utilisation; requests: KEDA on requests/s per replica from Prometheus.
    metrica: Literal["requests", "cpu", "memory"]
    # The target: % utilisation (1-100) for cpu/memory, requests/s per replica (1-100000) for requests.
    limiar: Annotated[int, Field(gt=0)]

    @model_validator(mode="after")
    def _range(self):
        """limiar is within its metrica's range."""
        lo, hi = LIMIAR_RANGES[self.metrica]
        if not lo <= self.limiar <= hi:
            unit = "% utilisation" if self.metrica != "requests" else " requests/s per replica"
            raise field_error(
                "limiar", f"must be between {lo} and {hi}{unit} for metrica {self.metrica!r} (got {self.limiar})"
            )
        return self


class InsightConfig(Strict):
    # How long Prometheus keeps samples, days.
    retencao_dias: Annotated[int, Field(ge=1, le=3650)]
    # Per-tenant error-rate and latency alerts, and the layers' own (a PrometheusRule).
    alertas: bool


class _Resource(Strict):
    # Unique among the resources; names the Kubernetes objects.
    nome: Nome


class Fabric(_Resource):
    tipo: Literal["fabric"]
    config: FabricConfig


class Compute(_Resource):
    tipo: Literal["compute"]
    config: ComputeConfig


class Datastore(_Resource):
    tipo: Literal["datastore"]
    config: DatastoreConfig


class Archive(_Resource):
    tipo: Literal["archive"]
    config: ArchiveConfig


class Beacon(_Resource):
    tipo: Literal["beacon"]
    config: BeaconConfig


class Sentinel(_Resource):
    tipo: Literal["sentinel"]
    config: SentinelConfig


class Gateway(_Resource):
    tipo: Literal["gateway"]
    config: GatewayConfig


class Autoscale(_Resource):
    tipo: Literal["autoscale"]
    config: AutoscaleConfig


class Insight(_Resource):
    tipo: Literal["insight"]
    config: InsightConfig


Resource = Annotated[
    Fabric | Compute | Datastore | Archive | Beacon | Sentinel | Gateway | Autoscale | Insight,
    Field(discriminator="tipo"),
]


class Blueprint(Strict):
    # The platform's name (shown in outputs and the architecture page).
    nome: Annotated[str, Field(min_length=1, max_length=200)]
    # multi-zona: replicated workloads spread hard across zones; zona-unica: the same objects without it.
    resiliencia: Literal["multi-zona", "zona-unica"]
    # The layers: exactly one fabric, at most one of each singleton, computes and their sentinels and autoscales.
    recursos: Annotated[tuple[Resource, ...], Field(min_length=1, strict=False)]

    @property
    def multi_zone(self) -> bool:
        return self.resiliencia == "multi-zona"

    def of(self, tipo: str) -> tuple:
        return tuple(r for r in self.recursos if r.tipo == tipo)

    def one(self, tipo: str):
        found = self.of(tipo)
        return found[0] if found else None

    def by_name(self, nome: str):
        return next((r for r in self.recursos if r.nome == nome), None)

    @property
    def api_compute(self) -> Compute:
        """The compute a gateway routes tenants to; validation ensures a gateway has exactly one."""
        found = next((c for c in self.of("compute") if c.config.subtipo == "api"), None)
        if found is None:
            raise ValueError("the blueprint has no compute with subtipo 'api'")
        return found


SINGLETONS = ("fabric", "datastore", "archive", "beacon", "gateway", "insight")


def cross_check(bp: Blueprint) -> list[Problem]:
    """Checks that span resources; field-level checks already passed."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(bp.recursos):
        if r.nome in seen:
            problems.append(
                Problem(
                    f"recursos[{i}].nome",
                    f"duplicate name {r.nome!r} (also recursos[{seen[r.nome]}].nome); names must be unique",
                )
            )
        seen.setdefault(r.nome, i)

    counts = {t: [r.nome for r in bp.of(t)] for t in TIPOS}
    if len(counts["fabric"]) != 1:
        problems.append(Problem("recursos", f"needs exactly one fabric (found {len(counts['fabric'])})"))
    for tipo in SINGLETONS[1:]:
        if len(counts[tipo]) > 1:
            problems.append(
                Problem(
                    "recursos",
                    f"at most one {tipo} is supported (found {len(counts[tipo])}: {', '.join(counts[tipo])})",
                )
            )

    targeted: dict[tuple[str, str], int] = {}
    for i, r in enumerate(bp.recursos):
        if r.tipo in ("sentinel", "autoscale"):
            path = f"recursos[{i}].config.alvo_recurso_id"
            target = bp.by_name(r.config.alvo_recurso_id)
            computes = ", ".join(counts["compute"]) or "none"
            if target is None:
                problems.append(
                    Problem(path, f"no resource named {r.config.alvo_recurso_id!r}; must name a compute ({computes})")
                )
                continue
            if target.tipo != "compute":
                problems.append(Problem(path, f"{target.nome!r} is a {target.tipo}; must name a compute ({computes})"))
                continue
            key = (r.tipo, target.nome)
            if key in targeted:
                problems.append(
                    Problem(
                        path,
                        f"{target.nome!r} already has a {r.tipo} (recursos[{targeted[key]}]); at most one per compute",
                    )
                )
            targeted.setdefault(key, i)
            if r.tipo == "autoscale":
                tc = target.config
                if tc.max_replicas <= tc.replicas_min:
                    problems.append(
                        Problem(
                            path,
                            f"target {target.nome!r} cannot scale: set its replicas_max above replicas_min "
                            f"({tc.replicas_min})",
                        )
                    )
    for i, r in enumerate(bp.recursos):
        if r.tipo == "archive":
            if len(r.nome) > 55:
                problems.append(
                    Problem(
                        f"recursos[{i}].nome",
                        f"an archive name has at most 55 characters, so its bucket names ('{r.nome}-backups') stay "
                        f"within S3's 63 (got {len(r.nome)})",
                    )
                )
            fabric = bp.one("fabric")
            if r.config.publico and not (counts["gateway"] and fabric is not None and fabric.config.publica):
                problems.append(
                    Problem(
                        f"recursos[{i}].config.publico",
                        "true needs a gateway resource and a fabric with publica: true (the public route is "
                        "files.<gateway domain>)",
                    )
                )
    if counts["gateway"]:
        apis = [c.nome for c in bp.of("compute") if c.config.subtipo == "api"]
        if len(apis) != 1:
            problems.append(
                Problem(
                    "recursos",
                    "a gateway routes tenants to exactly one compute with subtipo 'api' (found "
                    f"{len(apis)}{': ' + ', '.join(apis) if apis else ''})",
                )
            )
        base = bp.one("gateway").config.base_domain
        for i, r in enumerate(bp.recursos):
            if r.tipo == "compute" and r.config.subtipo == "web" and len(f"{r.nome}.{base}") > 253:
                problems.append(
                    Problem(
                        f"recursos[{i}].nome",
                        f"web host {r.nome}.{base} would be longer than 253 characters; use a shorter name",
                    )
                )
            if r.tipo == "compute" and r.config.subtipo == "web" and len(r.nome) < 2:
                # Traefik ranks routers by rule length (traefik/traefik v3.7.9 pkg/muxer/http/mux.go
                # GetRulePriority): Host(`a.<base>`) and Host(`*.<base>`) tie, so either may answer.
                problems.append(
                    Problem(
                        f"recursos[{i}].nome",
                        f"{r.nome!r}: web host {r.nome}.{base} would tie with the tenant wildcard *.{base} in the edge "
                        "controller's rule-length priority; use a name of at least two characters",
                    )
                )
    return problems


def load_blueprint(text: str) -> Blueprint:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(f"line {exc.lineno} column {exc.colno}", f"invalid JSON: {exc.msg}")]) from None
    return parse_blueprint(raw)


def parse_blueprint(raw) -> Blueprint:
    try:
        bp = Blueprint.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(from_validation_error(exc, drop=frozenset(TIPOS), model=Blueprint)) from None
    problems = cross_check(bp)
    if problems:
        raise InvalidInput(problems)
    return bp
