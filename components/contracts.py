"""How one layer finds another: names and selectors derived from the blueprint alone.

Kubernetes names are stable and readable (`<resource nome>` or `<nome>-<role>`), so a
layer can address another without waiting for its Pulumi outputs: the computes read the
database Secret by name, the WAF forwards to the API's Service by name, the network
policies select pods by these labels. The owning layer's module creates objects under
exactly these names; its tests assert that they match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import meta
from .blueprint import Blueprint


@dataclass(frozen=True)
class DatabaseRef:
    """CloudNativePG cluster `<nome>`; computes connect through the rw pooler."""

    cluster: str
    namespace: str

    @property
    def pooler_service(self) -> str:
        return f"{self.cluster}-pooler-rw"

    @property
    def app_secret(self) -> str:
        return f"{self.cluster}-app"  # created by CNPG: username, password, dbname, host, port, uri

    @property
    def port(self) -> int:
        return 5432

    @property
    def selector(self) -> dict:
        return {"cnpg.io/cluster": self.cluster}


@dataclass(frozen=True)
class ObjectStoreRef:
    """S3-compatible store `<nome>` (SeaweedFS) serving on 8333 inside the fabric."""

    name: str
    namespace: str

    @property
    def endpoint(self) -> str:
        return f"http://{meta.service_host(self.name, self.namespace)}:{self.port}"

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


@dataclass(frozen=True)
class BrokerRef:
    """NATS `<nome>` on 4222 inside the fabric."""

    name: str
    namespace: str

    @property
    def url(self) -> str:
        return f"nats://{meta.service_host(self.name, self.namespace)}:{self.port}"

    @property
    def port(self) -> int:
        return 4222

    @property
    def selector(self) -> dict:
        return meta.selector(self.name)

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

    @property
    def url(self) -> str:
        # The Prometheus Operator fronts every Prometheus in a namespace with `prometheus-operated`.
        return f"http://{meta.service_host('prometheus-operated', self.namespace)}:9090"

    @property
    def selector(self) -> dict:
        return {"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": self.name}


@dataclass(frozen=True)
class Refs:
    namespace: str
    database: Optional[DatabaseRef]
    object_store: Optional[ObjectStoreRef]
    broker: Optional[BrokerRef]
    metrics: Optional[MetricsRef]

    @classmethod
    def of(cls, bp: Blueprint) -> "Refs":
        ns = bp.one("fabric").nome

        def ref(tipo, kind):
            found = bp.one(tipo)
            return kind(found.nome, ns) if found else None

        database = bp.one("datastore")
        return cls(
            namespace=ns,
            database=DatabaseRef(database.nome, ns) if database else None,
            object_store=ref("archive", ObjectStoreRef),
            broker=ref("beacon", BrokerRef),
            metrics=ref("insight", MetricsRef),
        )
