"""Zone spread as the scheduler applies it during a zone outage or a drain (item 7 of issue 15).

Kubernetes API reference, TopologySpreadConstraint (core/v1): `nodeTaintsPolicy` Honor leaves
nodes with taints the pod does not tolerate out of the skew count (default Ignore counts them,
so an unreachable or drained zone is a domain with zero pods that pins maxSkew); `matchLabelKeys`
takes the listed keys' values from the incoming pod's labels and adds them to the selector,
so with `pod-template-hash` (set by the Deployment controller per ReplicaSet) a rollout's
new pods are spread among themselves.
"""

from components import meta


def spread_workloads(rendered) -> dict[str, tuple[str, list]]:
    """Every pod template (or CR that becomes one) with spread constraints: name → (kind, constraints)."""
    found = {}
    for kind in ("Deployment", "StatefulSet"):
        for obj in rendered.kind(kind):
            pod = obj["spec"]["template"]["spec"]
            if "topologySpreadConstraints" in pod:  # the archive is one pod: nothing to spread
                found[obj["metadata"]["name"]] = (kind, pod["topologySpreadConstraints"])
    for obj in rendered.kind("Pooler"):
        found[obj["metadata"]["name"]] = ("Pooler", obj["spec"]["template"]["spec"]["topologySpreadConstraints"])
    for obj in rendered.kind("Prometheus"):
        found[obj["metadata"]["name"]] = ("Prometheus", obj["spec"]["topologySpreadConstraints"])
    return found


def test_every_spread_honours_taints_and_deployments_spread_per_revision(seed_render):
    workloads = spread_workloads(seed_render)
    kinds = {kind for kind, _ in workloads.values()}
    assert {"Deployment", "StatefulSet", "Pooler", "Prometheus"} <= kinds
    for name, (kind, constraints) in workloads.items():
        zones = [c for c in constraints if c["topologyKey"] == meta.ZONE_KEY]
        assert zones and zones[0]["whenUnsatisfiable"] == "DoNotSchedule", name  # the seed is multi-zona
        for c in constraints:
            assert c["nodeTaintsPolicy"] == "Honor", (name, c)
            # Deployments (CNPG's Pooler is one) roll by ReplicaSet; StatefulSets have no pod-template-hash.
            expected = ["pod-template-hash"] if kind in ("Deployment", "Pooler") else None
            assert c.get("matchLabelKeys") == expected, (name, c)
