"""Day 2: what a stack deployed, and the changes to it that would lose data or break tenants.

The program exports `deployed` (`facts`): the keys whose change the Kubernetes provider turns
into a replacement of a stateful object, or that a running tenant depends on. Before `pulumi up`,
`python -m components check-change` compares the previous `deployed` output (`pulumi stack output
deployed --json`) with what the stack config and blueprint now say and refuses, with the key and
the safe procedure, every change below (`make up` runs it). The program itself cannot read its own
stack's outputs while it runs, and a refusal at that point would come after registrations began;
a pre-check before the engine starts refuses before anything is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .blueprint import Blueprint
from .blueprint import Datastore as DatastoreResource
from .contracts import Refs
from .datastore import DatastoreArgs, postgres_parameters
from .problems import Problem
from .settings import PURGEABLE, Settings

GUIDE = "docs/changing-a-running-platform.md"


def facts(bp: Blueprint, settings: Settings) -> dict[str, Any]:
    """JSON-safe facts of one deployment (plain values only: it is a stack output)."""
    fabric, gateway = bp.one("fabric"), bp.one("gateway")
    datastore, archive, beacon, insight = (bp.one(layer) for layer in PURGEABLE)
    return {
        "fabric": fabric.nome if fabric else None,
        "storageClass": settings.storage_class,
        "datastore": {
            "nome": datastore.nome,
            "tamanhoGb": datastore.config.tamanho_gb,
            "image": settings.image("postgres"),
            "parameters": _parameters(datastore, bp, settings),
            # Only when set: facts recorded before `recovery` existed read the same as "unset".
            **({"recovery": recovery.model_dump(by_alias=True)} if (recovery := settings.datastore.recovery) else {}),
        }
        if datastore
        else None,
        "archive": {"nome": archive.nome, "tamanhoGb": archive.config.tamanho_gb} if archive else None,
        "beacon": {
            "nome": beacon.nome,
            "jetstream": beacon.config.jetstream,
            "resiliencia": bp.resiliencia,
            "storageGb": settings.beacon.storage_gb,
        }
        if beacon
        else None,
        "insight": {"nome": insight.nome, "storageGb": settings.insight.storage_gb} if insight else None,
        "tenants": {t.id: t.isolation for t in settings.tenants},
        "plans": {t.id: t.plan for t in settings.tenants},
        "planSwitches": {t.id: t.previous_plan for t in settings.tenants if t.previous_plan},
        "domain": gateway.config.base_domain if gateway else None,
        "previousDomains": list(settings.edge.previous_domains),
        "tls": gateway.config.tls if gateway else None,
    }


def _parameters(resource: DatastoreResource, bp: Blueprint, settings: Settings) -> dict[str, str]:
    """The PostgreSQL parameters the Cluster gets, as the Datastore layer renders them."""
    return postgres_parameters(DatastoreArgs.of(resource, bp, settings, Refs.of(bp, domain=settings.cluster_domain)))


def refusals(previous: Mapping[str, Any], current: Mapping[str, Any], settings: Settings) -> list[Problem]:
    """Every change from `previous` to `current` facts that would lose data, as `key: message`.

    A layer whose `purge` is set may change anything: its data is being let go on purpose.
    """
    problems: list[Problem] = []
    kept: dict[str, Mapping[str, Any]] = {
        layer: previous[layer] for layer in PURGEABLE if previous.get(layer) and not getattr(settings, layer).purge
    }

    if kept and previous.get("fabric") and current.get("fabric") != previous["fabric"]:
        problems.append(
            Problem(
                "recursos[fabric].nome",
                f"{previous['fabric']!r} → {current.get('fabric')!r} would move {', '.join(sorted(kept))} into a new, "
                f"empty namespace (the data stays behind in {previous['fabric']!r}); keep the name, or purge those "
                f"layers first ({GUIDE})",
            )
        )
    if kept and current.get("storageClass") != previous.get("storageClass"):
        problems.append(
            Problem(
                "storageClass",
                f"{previous.get('storageClass')!r} → {current.get('storageClass')!r}: the volumes of "
                f"{', '.join(sorted(kept))} cannot move to another class in place (a StatefulSet's "
                f"volumeClaimTemplates and a Cluster's PVCs keep theirs); keep it ({GUIDE})",
            )
        )
    for layer, before in kept.items():
        after = current.get(layer)
        if not after:
            continue  # removed: retained on delete, the data stays in the cluster
        if after["nome"] != before["nome"]:
            problems.append(
                Problem(
                    f"recursos[{layer}].nome",
                    f"{before['nome']!r} → {after['nome']!r} creates a new, empty {layer} and points the computes "
                    f"at it; keep the name, or set {layer}.purge to replace it on purpose ({GUIDE})",
                )
            )
            continue
        problems += _resizes(layer, before, after)
    for tenant, isolation in previous.get("tenants", {}).items():
        now = current.get("tenants", {}).get(tenant)
        if now and now != isolation and "datastore" in kept:
            problems.append(
                Problem(
                    f"tenants[{tenant}].isolation",
                    f"{isolation!r} → {now!r} leaves the tenant's rows where the application no longer reads them; "
                    f"keep it, or offboard the tenant and onboard it under a new id ({GUIDE})",
                )
            )
    return (
        problems
        + _recovery_change(previous, current)
        + _plan_switches(previous, current)
        + _domain_change(previous, current)
        + _tls_off(previous, current)
    )


def _recovery_change(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[Problem]:
    """`datastore.recovery` acts only when the Cluster is created (components/datastore.py bootstrap):
    added or changed while the deployed Cluster stays, it would restore nothing and the stack would
    claim it had. `purge` alone does not excuse it: the Cluster goes only when the resource leaves
    the blueprint (or is renamed), and that is when a restore can happen. Removing it is allowed."""
    before, after = previous.get("datastore"), current.get("datastore")
    if not before or not after or after["nome"] != before["nome"]:
        return []
    wanted, had = after.get("recovery"), before.get("recovery")
    if wanted is None or wanted == had:
        return []
    return [
        Problem(
            "datastore.recovery",
            f"{repr(had) if had else 'unset'} → {wanted!r}: datastore {before['nome']!r} is deployed, and "
            "CloudNativePG reads a recovery only when it creates the Cluster, so the running database would stay as "
            "it is; restore into a new stack, "
            "or purge the datastore first (purge: true, remove it from the blueprint, `pulumi up`) and add it back "
            f"with recovery ({GUIDE}; docs/operations.md, Backups and restore)",
        )
    ]


def _plan_switches(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[Problem]:
    """A plan switch in one step moves the tenant's database login (the router's membership, its own
    LOGIN) at once, while the computes' logins file follows only at the kubelet's next sync; phase 1
    (`previousPlan`) keeps both logins working across that window. Facts from before `plans` was
    recorded cannot tell, so they refuse nothing."""
    if not current.get("datastore"):
        return []
    switches = current.get("planSwitches", {})
    return [
        Problem(
            f"tenants[{tenant}].plan",
            f"{plan!r} → {now!r} in one step switches the tenant's database login before the computes' logins file "
            f"follows (up to about a minute of refused connections); switch in two `pulumi up`s: first plan: {now} "
            f"with previousPlan: {plan}, then, once the pods' logins file shows the change, remove previousPlan "
            "(docs/layers/datastore.md, switching plans)",
        )
        for tenant, plan in previous.get("plans", {}).items()
        if (now := current.get("plans", {}).get(tenant)) and now != plan and switches.get(tenant) != plan
    ]


def _domain_change(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[Problem]:
    before, after = previous.get("domain"), current.get("domain")
    if not before or not after or after == before or before in current.get("previousDomains", []):
        return []
    return [
        Problem(
            "recursos[gateway].config.dominio",
            f"{before!r} → {after!r}: every tenant's <id>.{before} would stop being routed, certified and resolved at "
            f"once; keep serving it: set edge.previousDomains: [{before}] in the same change, and remove it once "
            "clients have moved (docs/layers/gateway.md, changing the domain)",
        )
    ]


def _tls_off(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[Problem]:
    """No path serves a host over HTTPS and plain HTTP from one Ingress (`tls: false` drops the TLS
    section and with it the certificate), so every https:// URL a client holds fails at once."""
    if previous.get("tls") is not True or current.get("tls") is not False:
        return []
    return [
        Problem(
            "recursos[gateway].config.tls",
            "true → false: every tenant's https:// URL (and any client that pinned HSTS) fails at once, and the "
            "certificates are dropped; keep tls: true, or, if plain HTTP is really intended, run `pulumi up` "
            f"directly once ({GUIDE})",
        )
    ]


def _resizes(layer: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Problem]:
    if layer == "datastore":
        if after["image"] != before["image"] and after["parameters"] != before["parameters"]:
            # cloudnative-pg v1.30.0 internal/webhook/v1/cluster_webhook.go validateConfigurationChange
            # rejects this update under primaryUpdateMethod: switchover (the Datastore's).
            changed = sorted(
                k
                for k in set(before["parameters"]) | set(after["parameters"])
                if before["parameters"].get(k) != after["parameters"].get(k)
            )
            return [
                Problem(
                    "images.postgres",
                    f"{before['image']!r} → {after['image']!r} together with PostgreSQL parameters "
                    f"({', '.join(changed)}): CNPG refuses both in one update of a switchover cluster; change "
                    f"the image and the parameters (or what derives them) in two `pulumi up`s ({GUIDE})",
                )
            ]
        if after["tamanhoGb"] < before["tamanhoGb"]:
            return [
                Problem(
                    f"recursos[{layer}].config.tamanho_gb",
                    f"{before['tamanhoGb']} → {after['tamanhoGb']}: a PVC cannot shrink; growing is done in place "
                    f"by CNPG when the storage class allows expansion ({GUIDE})",
                )
            ]
        return []
    if layer == "archive" and after["tamanhoGb"] != before["tamanhoGb"]:
        return [_grow(f"recursos[{layer}].config.tamanho_gb", before["tamanhoGb"], after["tamanhoGb"], before["nome"])]
    if layer == "beacon" and before["jetstream"]:
        keys = {"jetstream": "recursos[beacon].config.jetstream", "resiliencia": "resiliencia"}
        problems = [
            Problem(
                path,
                f"{before[key]!r} → {after[key]!r} re-creates the NATS servers that hold the JetStream streams "
                f"(quorum loss, orphaned streams); keep it, or drain the streams and purge the beacon first ({GUIDE})",
            )
            for key, path in keys.items()
            if after[key] != before[key]
        ]
        if after["storageGb"] != before["storageGb"]:
            problems.append(_grow("beacon.storageGb", before["storageGb"], after["storageGb"], before["nome"]))
        return problems
    if layer == "insight" and after["storageGb"] != before["storageGb"]:
        return [_grow("insight.storageGb", before["storageGb"], after["storageGb"], before["nome"], PROMETHEUS)]
    return []


# Growing a volume held in a StatefulSet's volumeClaimTemplates (which cannot change): the claims
# are grown first and the StatefulSet re-created around them (docs/changing-a-running-platform.md, growing a volume).
STATEFULSET = (
    "the size lives in the StatefulSet's volumeClaimTemplates, which cannot change; grow the claims "
    "data-{nome}-*, orphan the StatefulSet, then `pulumi up`"
)
# prometheus-operator v0.93.0 pkg/k8s/statefulset.go ForceUpdateStatefulSet: a StatefulSet update the API
# server rejects (a new volumeClaimTemplates) makes the operator delete it in the foreground (every
# replica down) and recreate it on the old-size claims, while retentionSize follows the new size.
PROMETHEUS = (
    "prometheus-operator would delete and recreate every replica on the old-size claims; follow its resize "
    "procedure (pause Prometheus {nome}, grow its claims, orphan the StatefulSet, resume), then `pulumi up`"
)


def _grow(path: str, before: int, after: int, nome: str, procedure: str = STATEFULSET) -> Problem:
    if after < before:
        return Problem(path, f"{before} → {after}: a PVC cannot shrink; keep {before} ({GUIDE})")
    return Problem(path, f'{before} → {after}: {procedure.format(nome=nome)} ({GUIDE}, "Growing a volume")')
