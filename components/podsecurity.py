"""Pod Security Standards `restricted` (Kubernetes 1.35), every control, as pure functions.

One implementation shared by the tests (tests/test_manifests.py) and the policy pack
(policy/validators.py), so what CI checks and what `pulumi preview --policy-pack` refuses
cannot drift apart. Inputs are manifests as plain mappings/sequences (the policy pack
hands in read-only proxies, so nothing here assumes `dict`/`list` or mutates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Where each workload kind keeps its pod spec.
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}
# `name` is the volume's own key; the rest are the volume sources `restricted` allows.
ALLOWED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret", "name"}
)
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")


def pod_spec(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a workload object, or None for kinds without pods."""
    path = POD_TEMPLATE_PATHS.get(obj.get("kind", ""))
    if path is None:
        return None
    node: Any = obj
    for part in path:
        node = (node or {}).get(part)
    return node or {}


def pod_template_labels(obj: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The labels the pods of a workload get (None for kinds without pods)."""
    path = POD_TEMPLATE_PATHS.get(obj.get("kind", ""))
    if path is None:
        return None
    if obj["kind"] == "Pod":
        return (obj.get("metadata") or {}).get("labels") or {}
    node: Any = obj
    for part in path[:-1]:
        node = (node or {}).get(part)
    return ((node or {}).get("metadata") or {}).get("labels") or {}


def containers(spec: Mapping[str, Any]) -> list:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("ephemeralContainers") or []),
        *(spec.get("containers") or []),
    ]


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Every `restricted` control one pod spec breaks ([] when compliant)."""
    bad = []
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            bad.append(f"{flag} is set")
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - ALLOWED_VOLUMES
        if kinds:
            bad.append(f"volume {vol.get('name')} uses {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        bad.append("pod runAsUser is 0")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        bad.append(f"pod seccompProfile is {pod_seccomp!r}")
    for c in containers(spec):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation is not false")
        if not (
            sc.get("runAsNonRoot") is True
            or (pod_sc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)
        ):
            bad.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            bad.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ALLOWED_SECCOMP:
            bad.append(f"{name}: seccompProfile is {seccomp!r}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: adds capabilities {list(caps['add'])}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                bad.append(f"{name}: hostPort {port['hostPort']}")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{name}: procMount {sc['procMount']}")
    return bad
