"""What every object waits for: its Namespace, and for an Ingress the edge controller's release."""

from __future__ import annotations

import pulumi

from components import kube
from components.addons import releases
from components.render import RecordingMocks
from components.settings import Settings

NAMESPACE = "kubernetes:core/v1:Namespace"


def namespaces(mocks: RecordingMocks) -> dict[str, str]:
    """Namespace name → resource name, for the namespaces the program creates."""
    return {r.inputs["metadata"]["name"]: r.name for r in mocks.of_type(NAMESPACE)}


def namespaced(mocks: RecordingMocks) -> list[tuple[str, str]]:
    """(resource name, namespace) of every namespaced object and Helm release registered."""
    found = []
    for r in mocks.resources:
        if r.typ == "kubernetes:helm.sh/v3:Release":
            found.append((r.name, r.inputs["namespace"]))
        elif r.typ.startswith("kubernetes:") and "namespace" in r.inputs.get("metadata", {}):
            found.append((r.name, r.inputs["metadata"]["namespace"]))
    return found


def test_every_namespaced_object_depends_on_its_namespace(seed_render):
    mocks = seed_render.run.mocks
    owned = namespaces(mocks)
    objects = namespaced(mocks)
    # The seed with add-ons: the platform's namespace and one per add-on namespace, all created here.
    assert {ns for _, ns in objects} <= owned.keys() and len(objects) > 70
    missing = [f"{name} (in {ns})" for name, ns in objects if owned[ns] not in mocks.depends_on(name)]
    assert missing == []


def test_without_addons_objects_still_wait_for_the_platform_namespace(render):
    mocks = render({"addons": False}).run.mocks
    owned = namespaces(mocks)
    assert list(owned) == ["saas-net"]
    assert all(owned["saas-net"] in mocks.depends_on(name) for name, ns in namespaced(mocks) if ns == "saas-net")
    # No edge release to wait for: the Ingress waits for its namespace only.
    assert mocks.depends_on("wildcard-dns-ingress") == ("saas-net-namespace",)


def test_every_ingress_waits_for_the_edge_controller_release(seed_render):
    mocks = seed_render.run.mocks
    (edge,) = [r.key for r in releases(Settings(), None) if r.ingress_class == Settings().edge.ingress_class]
    ingresses = [r.name for r in mocks.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    assert ingresses and all(f"addons-{edge}" in mocks.depends_on(name) for name in ingresses)


def transformed(prerequisites: kube.Prerequisites, typ: str, props: dict) -> pulumi.ResourceOptions | None:
    result = prerequisites.transformation(
        pulumi.ResourceTransformationArgs(None, typ, "x", props, pulumi.ResourceOptions())
    )
    return result.opts if result else None


def test_workloads_wait_longer_than_the_provider_default_for_their_pods():
    prerequisites = kube.Prerequisites()
    for kind in ("Deployment", "StatefulSet"):
        opts = transformed(prerequisites, f"kubernetes:apps/v1:{kind}", {"kind": kind, "metadata": {"name": "w"}})
        assert opts is not None and opts.custom_timeouts is not None
        assert (opts.custom_timeouts.create, opts.custom_timeouts.update) == ("15m", "15m")
    # The provider's 10 minutes stay for everything else; a namespace-less ConfigMap is left alone.
    assert transformed(prerequisites, "kubernetes:core/v1:ConfigMap", {"kind": "ConfigMap", "metadata": {}}) is None
