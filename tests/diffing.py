"""What `pulumi preview` would show between two program runs, computed from two mock runs.

Each run's registrations are keyed by Pulumi (type, name) — the URN, which is what the
engine diffs on. Created/deleted keys are creates/deletes; a key whose inputs differ is an
update, or a replacement when a field that cannot change in place changed (a new
metadata.name, a Deployment's selector, any input of a pulumi-random resource, ...).
Usable for any layer: rules key on kinds and types, not on specific objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
}


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


def _forces_replacement(r: Registered, paths: list[tuple]) -> list[tuple]:
    if r.typ.startswith("random:"):
        return paths  # pulumi-random replaces on any input change: a new generated value
    kind = r.inputs.get("kind", "")
    immutable = IMMUTABLE_ALL + IMMUTABLE_BY_KIND.get(kind, ())
    return [p for p in paths if any(p[: len(i)] == i for i in immutable)]


def diff(before: Run, after: Run) -> Diff:
    old, new = snapshot(before), snapshot(after)
    result = Diff(created=sorted(set(new) - set(old)), deleted=sorted(set(old) - set(new)))
    for key in sorted(set(old) & set(new)):
        paths = changed_paths(plain(old[key].inputs), plain(new[key].inputs))
        if not paths:
            continue
        forcing = _forces_replacement(new[key], paths)
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
