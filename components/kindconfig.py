"""The kind cluster config for a stack: deploy/kind-config.yaml as `audit.kubernetes` wants it.

The kind cluster is created before Pulumi runs (`make up`), and kubeadm writes the API
server's flags once, at creation; so the switch cannot live in the Pulumi program. `make up`
writes the config it hands to `kind create cluster` with `python -m components kind-config`:
the base file unchanged when the switch is on, without the audit flags, volumes and mounts
when it is off. Changing the switch later applies when the cluster is created again
(`make down up`). Relative `extraMounts` hostPaths (relative to the project root, where kind
resolves them when run as docs/getting-started.md says) are made absolute so the written file works from
anywhere.
"""

from __future__ import annotations

import copy
import os

import yaml

AUDIT_PREFIX = "audit-"


def kind_config(base: dict, audit: bool, root: str) -> dict:
    config = copy.deepcopy(base)
    for node in config.get("nodes", []):
        for mount in node.get("extraMounts", []):
            mount["hostPath"] = os.path.join(root, mount["hostPath"])
        if not audit:
            _drop_audit(node)
    return config


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (the kubeadm patches) as `|` blocks, as they are written by hand."""


_BlockDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def dump(config: dict, source: str) -> str:
    header = f"# Written by `python -m components kind-config` from {source}; edit that file instead.\n"
    return header + yaml.dump(config, Dumper=_BlockDumper, sort_keys=False)


def _drop_audit(node: dict) -> None:
    """Remove the audit flags and volumes from the node's ClusterConfiguration patches, and the mounts that fed them."""
    patches, fed = [], set()
    for text in node.get("kubeadmConfigPatches", []):
        patch = yaml.safe_load(text)
        api = patch.get("apiServer") if patch.get("kind") == "ClusterConfiguration" else None
        if not api:
            patches.append(text)
            continue
        audit_volumes = [v for v in api.get("extraVolumes", []) if v["name"].startswith(AUDIT_PREFIX)]
        fed |= {v["hostPath"] for v in audit_volumes}
        api["extraArgs"] = {k: v for k, v in api.get("extraArgs", {}).items() if not k.startswith(AUDIT_PREFIX)}
        api["extraVolumes"] = [v for v in api.get("extraVolumes", []) if v not in audit_volumes]
        patch["apiServer"] = {k: v for k, v in api.items() if v}
        if not patch["apiServer"]:
            del patch["apiServer"]
        if set(patch) - {"kind", "apiVersion"}:
            patches.append(yaml.safe_dump(patch, sort_keys=False))
    mounts = [m for m in node.get("extraMounts", []) if m["containerPath"] not in fed]
    for key, value in (("kubeadmConfigPatches", patches), ("extraMounts", mounts)):
        if value:
            node[key] = value
        else:
            node.pop(key, None)
