"""Platform: every layer of a validated blueprint, built in dependency order.

Order: cluster Addons (when the stack installs them) → Fabric (the namespace everything
lives in) → backing services whose Secrets the computes read → Computes → edge (login
proxies, Sentinel, Gateway) → Autoscale → Insight.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import kube
from .addons import Addons, AddonsArgs
from .archive import Archive, ArchiveArgs
from .autoscale import Autoscale, AutoscaleArgs
from .beacon import Beacon, BeaconArgs
from .blueprint import Blueprint
from .compute import Compute, ComputeArgs
from .contracts import Refs
from .datastore import Datastore, DatastoreArgs
from .fabric import Fabric, FabricArgs
from .gateway import Gateway, GatewayArgs
from .insight import Insight, InsightArgs
from .sentinel import Sentinel, SentinelArgs
from .settings import Inputs, Settings
from .sso import AdminSso, AdminSsoArgs


@dataclass(frozen=True)
class PlatformArgs:
    blueprint: Blueprint
    settings: Settings

    @classmethod
    def of(cls, inputs: Inputs) -> PlatformArgs:
        return cls(inputs.blueprint, inputs.settings)


def public_computes(bp: Blueprint, refs: Refs) -> set[str]:
    """Computes the edge reaches directly: on a public fabric, those no WAF or login proxy fronts."""
    if not bp.one("fabric").config.publica:
        return set()
    return {c.nome for c in bp.of("compute") if refs.edge_service(c.nome) == c.nome}


def unauthenticated_warning(bp: Blueprint, settings: Settings) -> str | None:
    webs = [c.nome for c in bp.of("compute") if c.config.subtipo == "web"]
    if settings.oidc is not None or not webs:
        return None
    gateway = bp.one("gateway")
    where = f" at {', '.join(f'{w}.{gateway.config.base_domain}' for w in webs)}" if gateway else ""
    return (
        f"admin UI unauthenticated: web compute(s) {', '.join(webs)} are served{where} with no login in front; "
        "set b2b-platform:oidc to put them behind SSO (docs/sso.md)"
    )


def api_server_warning(bp: Blueprint, settings: Settings) -> str | None:
    """Layers that talk to the API (datastore, insight) without knowing where it is: say so once."""
    if settings.api_server_cidr or not (bp.one("datastore") or bp.of("insight")):
        return None
    return (
        "apiServerCidr is not set: the database pods and Prometheus may reach any address on TCP 443/6443 "
        "(the API server's ports); set b2b-platform:apiServerCidr to the API server's address range "
        "(docs/network.md)"
    )


class Platform(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    datastore: Datastore | None
    addons: Addons | None
    archive: Archive | None
    beacon: Beacon | None
    computes: dict[str, Compute]
    sentinels: dict[str, Sentinel]
    ssos: dict[str, AdminSso]
    gateway: Gateway | None
    autoscalers: dict[str, Autoscale]
    insight: Insight | None

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        prerequisites = kube.Prerequisites()
        super().__init__(
            "b2b-platform:platform:Platform",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(transformations=[prerequisites.transformation])),
        )
        bp, settings = args.blueprint, args.settings
        child = pulumi.ResourceOptions(parent=self)
        fabric_res = bp.one("fabric")
        refs = Refs.of(bp, sso=settings.oidc is not None, domain=settings.cluster_domain)
        ns = refs.namespace
        gateway_res = bp.one("gateway")
        https = gateway_res is not None and gateway_res.config.tls
        self.addons = Addons("addons", AddonsArgs.of(settings, https), child) if settings.addons else None
        requires = self.addons.requires if self.addons else (lambda *api_groups: ())
        prerequisites.ingress_controllers.update(self.addons.ingress_controllers if self.addons else {})
        fabric = Fabric(fabric_res.nome, FabricArgs.of(fabric_res, settings, bp), child)
        in_fabric = pulumi.ResourceOptions(parent=self, depends_on=[fabric])

        # Backing services first: the computes read their Secrets.
        archive_res, beacon_res, datastore_res = bp.one("archive"), bp.one("beacon"), bp.one("datastore")
        self.archive = (
            Archive(
                archive_res.nome,
                ArchiveArgs.of(archive_res, bp, settings, requires=requires("cert-manager.io")),
                in_fabric,
            )
            if archive_res
            else None
        )
        self.beacon = (
            Beacon(
                beacon_res.nome,
                BeaconArgs.of(beacon_res, bp, settings, requires=requires("jetstream.nats.io")),
                in_fabric,
            )
            if beacon_res
            else None
        )
        self.datastore = (
            Datastore(
                datastore_res.nome,
                DatastoreArgs.of(
                    datastore_res,
                    bp,
                    settings,
                    refs,
                    requires=requires("postgresql.cnpg.io", "barmancloud.cnpg.io", "monitoring.coreos.com"),
                ),
                in_fabric,
            )
            if datastore_res
            else None
        )
        backing = [b for b in (self.archive, self.beacon, self.datastore) if b is not None]
        env = tuple(e for b in backing for e in b.env)
        volumes = tuple(v for b in backing for v in b.volumes)
        volume_mounts = tuple(m for b in backing for m in b.volume_mounts)

        public = public_computes(bp, refs)
        autoscaled = {a.config.alvo_recurso_id for a in bp.of("autoscale")}
        self.computes = {
            c.nome: Compute(
                c.nome,
                ComputeArgs.of(
                    c,
                    settings,
                    ns,
                    bp.multi_zone,
                    c.nome in public,
                    c.nome in autoscaled,
                    env=env,
                    volumes=volumes,
                    volume_mounts=volume_mounts,
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[fabric, *backing]),
            )
            for c in bp.of("compute")
        }
        self.ssos = {
            sso.name: AdminSso(
                sso.name,
                AdminSsoArgs.of(sso, bp, settings, refs),
                pulumi.ResourceOptions(parent=self, depends_on=[fabric, self.computes[sso.target]]),
            )
            for sso in refs.ssos
        }
        self.sentinels = {
            waf.name: Sentinel(
                waf.name,
                SentinelArgs.of(bp.by_name(waf.name), bp, settings, waf, fabric_res.config.publica),
                pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[fabric, self.computes[waf.target], *([self.ssos[waf.via.name]] if waf.via else [])],
                ),
            )
            for waf in refs.wafs
        }
        self.gateway = (
            Gateway(
                gateway_res.nome,
                GatewayArgs.of(gateway_res, bp, settings, refs, requires=requires("cert-manager.io")),
                pulumi.ResourceOptions(parent=self, depends_on=[fabric, *self.ssos.values(), *self.sentinels.values()]),
            )
            if gateway_res
            else None
        )
        self.autoscalers = {
            a.nome: Autoscale(
                a.nome,
                AutoscaleArgs.of(
                    a, bp, settings, ns, refs.metrics.url if refs.metrics else None, requires=requires("keda.sh")
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[self.computes[a.config.alvo_recurso_id]]),
            )
            for a in bp.of("autoscale")
        }

        insight = bp.one("insight")
        self.insight = (
            Insight(
                insight.nome,
                InsightArgs.of(insight, bp, settings, refs, requires=requires("monitoring.coreos.com")),
                in_fabric,
            )
            if insight
            else None
        )

        for warning in (api_server_warning(bp, settings), unauthenticated_warning(bp, settings)):
            if warning:
                pulumi.log.warn(warning, self)

        self.namespace = fabric.namespace
        self.register_outputs({"namespace": self.namespace})
