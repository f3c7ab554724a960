"""What `pulumi preview` would show between two program runs, computed from two mock runs.

Each run's registrations are keyed by Pulumi (type, name) — the URN, which is what the
engine diffs on. Created/deleted keys are creates/deletes; a key whose inputs differ is an
update, or a replacement when a field that cannot change in place changed (a new
metadata.name, a Deployment's selector, any input of a pulumi-random resource, a Secret's or
ConfigMap's data unless the provider's mutable flags are on, ...).
Usable for any layer: rules key on kinds and types, not on specific objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml
from conftest import ROOT, revealed

from components.render import Registered, Run, plain

# Fields whose change makes the Kubernetes provider (or the API server) replace the object.
IMMUTABLE_ALL = (("metadata", "name"), ("metadata", "namespace"), ("apiVersion",), ("kind",))
IMMUTABLE_BY_KIND = {
    "Deployment": (("spec", "selector"),),
    "DaemonSet": (("spec", "selector"),),
    "ReplicaSet": (("spec", "selector"),),
    "StatefulSet": (
        ("spec", "selector"),
        ("spec", "volumeClaimTemplates"),
        ("spec", "serviceName"),
        ("spec", "podManagementPolicy"),
    ),
    "Job": (("spec", "selector"), ("spec", "template")),
    "PersistentVolumeClaim": (
        ("spec", "storageClassName"),
        ("spec", "accessModes"),
        ("spec", "volumeName"),
        ("spec", "volumeMode"),
    ),
    "Service": (("spec", "clusterIP"), ("spec", "clusterIPs")),
    "PodDisruptionBudget": (),
    "Secret": (("type",),),
}
# Data the provider replaces instead of updating unless its `enable<Kind>Mutable` flag is on
# (pulumi-kubernetes v4.32.0 provider/pkg/provider/diff.go forceNewProperties; the flags are the
# provider config `kubernetes:enableSecretMutable` / `kubernetes:enableConfigMapMutable`,
# provider.go, default false). An object marked `immutable: true` is replaced either way.
MUTABLE_FLAG = {"Secret": "enableSecretMutable", "ConfigMap": "enableConfigMapMutable"}
DATA_FIELDS = {"Secret": (("data",), ("stringData",)), "ConfigMap": (("data",), ("binaryData",))}


def stack_provider_flags(stack: str = "dev") -> frozenset[str]:
    """The `enable*Mutable` flags a stack's file turns on for the Kubernetes provider."""
    with open(os.path.join(ROOT, f"Pulumi.{stack}.yaml"), encoding="utf-8") as fh:
        config = yaml.safe_load(fh)["config"]
    return frozenset(flag for flag in MUTABLE_FLAG.values() if str(config.get(f"kubernetes:{flag}")).lower() == "true")


DEV_FLAGS = stack_provider_flags()


@dataclass
class Diff:
    created: list[tuple] = field(default_factory=list)
    deleted: list[tuple] = field(default_factory=list)
    updated: dict[tuple, list[tuple]] = field(default_factory=dict)  # key → changed paths
    replaced: dict[tuple, list[tuple]] = field(default_factory=dict)  # key → the paths that force it

    @property
    def touched(self) -> set[tuple]:
        return set(self.created) | set(self.deleted) | set(self.updated) | set(self.replaced)

    def summary(self) -> str:
        return (
            f"created {sorted(self.created)}, deleted {sorted(self.deleted)}, "
            f"updated {sorted(self.updated)}, replaced {sorted(self.replaced)}"
        )


def snapshot(run: Run) -> dict[tuple, Registered]:
    found: dict[tuple, Registered] = {}
    for r in run.mocks.resources:
        key = (r.typ, r.name)
        assert key not in found, f"{key} registered twice"
        found[key] = r
    return found


def changed_paths(a: Any, b: Any, path: tuple = ()) -> list[tuple]:
    """Leaf paths where two input trees differ (lists compare whole)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in sorted(set(a) | set(b), key=str) for p in changed_paths(a.get(k), b.get(k), (*path, k))]
    return [] if a == b else [path]


def _forces_replacement(r: Registered, paths: list[tuple], flags: frozenset[str]) -> list[tuple]:
    if r.typ.startswith("random:"):
        return paths  # pulumi-random replaces on any input change: a new generated value
    kind = r.inputs.get("kind", "")
    immutable = IMMUTABLE_ALL + IMMUTABLE_BY_KIND.get(kind, ())
    if kind in MUTABLE_FLAG and (MUTABLE_FLAG[kind] not in flags or r.inputs.get("immutable")):
        immutable += DATA_FIELDS[kind]
    return [p for p in paths if any(p[: len(i)] == i for i in immutable)]


def diff(before: Run, after: Run, flags: frozenset[str] = DEV_FLAGS) -> Diff:
    """`flags`: the provider's `enable*Mutable` settings (default: the dev stack's). Secret values
    are compared revealed: a rotated password is a change even though the preview masks it."""
    old, new = snapshot(before), snapshot(after)
    result = Diff(created=sorted(set(new) - set(old)), deleted=sorted(set(old) - set(new)))
    for key in sorted(set(old) & set(new)):
        paths = changed_paths(plain(revealed(old[key].inputs)), plain(revealed(new[key].inputs)))
        if not paths:
            continue
        forcing = _forces_replacement(new[key], paths, flags)
        if forcing:
            result.replaced[key] = forcing
        else:
            result.updated[key] = paths
    return result


def kind_of(run: Run, key: tuple) -> str:
    return snapshot(run)[key].inputs.get("kind", key[0])


def mentions(run: Run, key: tuple, text: str) -> bool:
    """Whether a resource's name or inputs mention `text` (e.g. a tenant id)."""
    r = snapshot(run).get(key)
    return r is not None and (text in r.name or text in repr(plain(r.inputs)))
