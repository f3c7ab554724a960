"""Platform: every layer of a validated blueprint, built in dependency order.

Order: Fabric (the namespace everything lives in) → backing services whose Secrets the
computes read → Computes → edge (Sentinel, Gateway) → Autoscale → Insight. A blueprint
layer without a component yet is named in a Pulumi warning and deploys nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .archive import Archive, ArchiveArgs
from .autoscale import Autoscale, AutoscaleArgs
from .beacon import Beacon, BeaconArgs
from .blueprint import Blueprint
from .compute import Compute, ComputeArgs
from .fabric import Fabric, FabricArgs
from .contracts import Refs
from .settings import Inputs, Settings

# tipos with a component in this release; the rest are reported, not faked.
BUILT = ("fabric", "compute", "autoscale", "archive", "beacon")


@dataclass(frozen=True)
class PlatformArgs:
    blueprint: Blueprint
    settings: Settings

    @classmethod
    def of(cls, inputs: Inputs) -> "PlatformArgs":
        return cls(inputs.blueprint, inputs.settings)


def unbuilt_layers(bp: Blueprint) -> list[str]:
    return [f"{r.nome} ({r.tipo})" for r in bp.recursos if r.tipo not in BUILT]


def public_computes(bp: Blueprint) -> set[str]:
    """Computes the edge reaches directly: all of them on a public fabric, except those a Sentinel fronts."""
    if not bp.one("fabric").config.publica:
        return set()
    shielded = {s.config.alvo_recurso_id for s in bp.of("sentinel") if "sentinel" in BUILT}
    return {c.nome for c in bp.of("compute")} - shielded


class Platform(pulumi.ComponentResource):
    namespace: pulumi.Output[str]
    archive: Archive | None
    beacon: Beacon | None
    computes: dict[str, Compute]
    autoscalers: dict[str, Autoscale]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:platform:Platform", name, None, opts)
        bp, settings = args.blueprint, args.settings
        child = pulumi.ResourceOptions(parent=self)
        fabric_res = bp.one("fabric")
        refs = Refs.of(bp)
        ns = refs.namespace
        fabric = Fabric(fabric_res.nome, FabricArgs.of(fabric_res, settings), child)
        in_fabric = pulumi.ResourceOptions(parent=self, depends_on=[fabric])

        archive_res, beacon_res = bp.one("archive"), bp.one("beacon")
        self.archive = Archive(archive_res.nome, ArchiveArgs.of(archive_res, bp, settings), in_fabric) if archive_res else None
        self.beacon = Beacon(beacon_res.nome, BeaconArgs.of(beacon_res, bp, settings), in_fabric) if beacon_res else None
        backing = [b for b in (self.archive, self.beacon) if b is not None]
        env = tuple(e for b in backing for e in b.env)

        public = public_computes(bp)
        autoscaled = {a.config.alvo_recurso_id for a in bp.of("autoscale")}
        self.computes = {
            c.nome: Compute(
                c.nome, ComputeArgs.of(c, settings, ns, bp.multi_zone, c.nome in public, c.nome in autoscaled, env=env),
                pulumi.ResourceOptions(parent=self, depends_on=[fabric, *backing]),
            )
            for c in bp.of("compute")
        }
        self.autoscalers = {
            a.nome: Autoscale(
                a.nome,
                AutoscaleArgs.of(a, bp, settings, ns, refs.metrics.url if refs.metrics else None),
                pulumi.ResourceOptions(parent=self, depends_on=[self.computes[a.config.alvo_recurso_id]]),
            )
            for a in bp.of("autoscale")
        }

        pending = unbuilt_layers(bp)
        if pending:
            pulumi.log.warn(f"blueprint layers without a component in this release, not deployed: {', '.join(pending)}", self)

        self.namespace = fabric.namespace
        self.register_outputs({"namespace": self.namespace})
