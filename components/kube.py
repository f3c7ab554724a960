"""One constructor for built-in Kubernetes objects, registered without legacy aliases.

The typed classes of pulumi-kubernetes (`k8s.apps.v1.Deployment`, `k8s.networking.v1.Ingress`,
…) add one alias per older API group a kind ever lived in (Deployment 3, StatefulSet and
Ingress 2, NetworkPolicy and PodDisruptionBudget 1, Role/RoleBinding 2) to every object, for
stacks that once held those types. This program never did, and resolving the aliases costs
the SDK about as much as registering the object itself (docs/scale.md). The provider keys
its behaviour (schema, await logic, diff) on the group/version/kind in the type token
`kubernetes:<group/version>:<Kind>`, which is what `Object` registers, with the same inputs
as the typed class: the engine and the provider see the same resource and the same URN.

`HelmRelease` does the same for `kubernetes:helm.sh/v3:Release`. Its typed class has no
aliases but ~40 properties declared as Python getters plus input classes, which the SDK
reflects over on every registration: 12.8 M instructions per release against 5.7 M for the
same inputs as a plain dict (callgrind, docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import pulumi

from . import meta

# The typed classes pin the provider plugin to the SDK's own version; so does Object.
PROVIDER_VERSION = version("pulumi_kubernetes")
# Secret's typed class marks these secret in inputs and outputs; Object does the same.
SECRET_FIELDS = ("data", "stringData")


def type_token(api_version: str, kind: str) -> str:
    """`v1` → `kubernetes:core/v1:Kind`, `apps/v1` → `kubernetes:apps/v1:Kind`, as the typed classes."""
    return f"kubernetes:{api_version if '/' in api_version else 'core/' + api_version}:{kind}"


class Object(pulumi.CustomResource):
    """A built-in Kubernetes object: `fields` are its top-level fields besides apiVersion/kind/metadata
    (`spec`, or `data`/`stringData`/`type` of a Secret, `rules` of a Role, …) in camelCase.

    Outputs are the object's fields as plain dicts: read a name as `obj.metadata["name"]`.
    """

    # For type checkers only: the SDK evaluates a resource class's own annotations again on every
    # registration (`pulumi._types.resource_types`: a throwaway class, `get_type_hints`, and with
    # postponed annotations a compile and an eval each), ~2% of an evaluation for nothing here,
    # since the outputs are plain dicts either way (docs/scale.md).
    if TYPE_CHECKING:
        metadata: pulumi.Output[dict]

    def __init__(
        self,
        name: str,
        api_version: str,
        kind: str,
        metadata: dict,
        opts: pulumi.ResourceOptions | None = None,
        **fields: Any,
    ):
        props = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
        extra = pulumi.ResourceOptions(version=PROVIDER_VERSION)
        if kind == "Secret" and api_version == "v1":
            for key in SECRET_FIELDS:
                if key in props:
                    props[key] = pulumi.Output.secret(props[key])
            extra = pulumi.ResourceOptions(version=PROVIDER_VERSION, additional_secret_outputs=list(SECRET_FIELDS))
        super().__init__(type_token(api_version, kind), name, props, pulumi.ResourceOptions.merge(opts, extra))


class HelmRelease(pulumi.CustomResource):
    """A Helm release from its camelCase inputs (`chart`, `version`, `repositoryOpts`, `values`, …).

    Registers what the typed class registers: the same type token and inputs, `compat: "true"`
    (the class always sets it) and the provider version; `status` is its output.
    """

    if TYPE_CHECKING:
        status: pulumi.Output[dict]

    def __init__(self, name: str, inputs: dict, opts: pulumi.ResourceOptions | None = None):
        props = {**inputs, "compat": "true", "status": None}
        super().__init__(
            "kubernetes:helm.sh/v3:Release",
            name,
            props,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=PROVIDER_VERSION)),
        )


def http_tier(
    name: str, metadata: dict, deployment_spec: dict, service_spec: dict, opts: pulumi.ResourceOptions
) -> tuple[Object, Object]:
    """A stateless HTTP tier's objects (computes, the WAF, login proxies): a ServiceAccount
    without a token, the Deployment, its Service and a PodDisruptionBudget. Returns the
    Deployment and the Service; `name` is the owning component's, for the children's names."""
    Object(f"{name}-sa", "v1", "ServiceAccount", metadata=metadata, automountServiceAccountToken=False, opts=opts)
    deployment = Object(
        f"{name}-deployment", "apps/v1", "Deployment", metadata=metadata, spec=deployment_spec, opts=opts
    )
    service = Object(f"{name}-service", "v1", "Service", metadata=metadata, spec=service_spec, opts=opts)
    Object(
        f"{name}-pdb",
        "policy/v1",
        "PodDisruptionBudget",
        metadata=metadata,
        spec=meta.pdb_spec(deployment_spec["selector"]["matchLabels"]),
        opts=opts,
    )
    return deployment, service


def name_of(resource: pulumi.CustomResource) -> pulumi.Output[str]:
    """`metadata.name` as the provider returns it, for any object (custom resources included)."""
    metadata: pulumi.Output[dict] = resource.metadata  # type: ignore[attr-defined]  # an output the untyped CustomResource class does not declare
    return metadata["name"]


# How long the provider waits for a workload's pods to be ready (its default: 10 minutes, pulumi-kubernetes
# provider/pkg/await/await.go): a fresh kind cluster pulls every image on four nodes at once. The same as
# the add-on releases' Helm timeout (addons.release_inputs).
WORKLOAD_WAIT = "15m"
WORKLOADS = ("Deployment", "StatefulSet")


WAIT_FOR = "pulumi.com/waitFor"
TIMEOUT_SECONDS = "pulumi.com/timeoutSeconds"
# What `pulumi up` waits for on the custom resources whose readiness the platform depends on, and
# for how long (seconds), by (API group, kind). Without `pulumi.com/waitFor` the provider reports a
# custom resource created as soon as the API server stored it (pulumi-kubernetes v4.32.0
# provider/pkg/metadata/overrides.go ReadyCondition: no annotation → condition.NewImmediate);
# `condition=<type>` waits for `.status.conditions[type=<type>].status == "True"` at the object's
# current generation (provider/pkg/await/condition/kubectl.go checkCondition), and
# `pulumi.com/timeoutSeconds` replaces the 10-minute default (await.go). The condition types are
# the operators' own, read at the pinned tags:
AWAITED: dict[tuple[str, str], tuple[str, int]] = {
    # cloudnative-pg v1.30.0 api/v1/cluster_types.go ConditionClusterReady = "Ready", set by
    # pkg/resources/status/transactions.go once every instance is up; a standby joining by
    # pg_basebackup copies the whole database, hence half an hour.
    ("postgresql.cnpg.io", "Cluster"): ("condition=Ready", 1800),
    # cert-manager v1.21.1 pkg/apis/certmanager/v1/types_certificate.go CertificateConditionReady;
    # ACME DNS-01 waits for the TXT record to propagate before the order completes.
    ("cert-manager.io", "Certificate"): ("condition=Ready", 900),
    # nats-io/nack v0.22.4 internal/controller/types.go readyCondType = "Ready" (also
    # controllers/jetstream/controller.go): the stream/consumer exists on the servers.
    ("jetstream.nats.io", "Stream"): ("condition=Ready", 300),
    ("jetstream.nats.io", "Consumer"): ("condition=Ready", 300),
    # prometheus-operator v0.93.0 pkg/apis/monitoring/v1/types.go Available ("True": all pods
    # ready; "Degraded" is not enough): PVC binding and a WAL replay after a restart take minutes.
    ("monitoring.coreos.com", "Prometheus"): ("condition=Available", 900),
    # keda v2.20.2 apis/keda/v1alpha1/condition_types.go ConditionReady: the scaler is configured
    # and its trigger answers (pkg/scaling/executor/scale_scaledobjects.go sets it False on a
    # TriggerError without fallback), so it waits as long as the Prometheus it queries.
    ("keda.sh", "ScaledObject"): ("condition=Ready", 900),
}


def awaited(type_: str, props: Mapping[str, Any]) -> dict | None:
    """`props` of a resource of type `type_` (`kubernetes:<group>/<version>:<kind>`) with its AWAITED
    annotations added, or None when none apply."""
    _, _, token = type_.partition(":")
    api_version, _, kind = token.partition(":")
    rule = AWAITED.get((api_version.split("/")[0], kind))
    md = props.get("metadata")
    if rule is None or not isinstance(md, dict):
        return None
    condition, seconds = rule
    annotations = {**(md.get("annotations") or {}), WAIT_FOR: condition, TIMEOUT_SECONDS: str(seconds)}
    return {**props, "metadata": {**md, "annotations": annotations}}


class Prerequisites:
    """What an object waits for because of what it names, for every resource under one parent.

    A namespaced object depends on the Namespace the program creates for it, so `up` creates
    the Namespace first (instead of leaning on the provider's NotFound retries) and `destroy`
    deletes the contents before the Namespace. An Ingress depends on the release that runs
    the controller of its `ingressClassName`. Objects registered before their Namespace, and
    namespaces the program doesn't create, get nothing. Workloads get WORKLOAD_WAIT, the custom
    resources in AWAITED their readiness condition.

    Set `transformation` on the top component's options: Pulumi applies a parent's
    transformations to every descendant, so no layer repeats this in its children's options.
    """

    def __init__(self) -> None:
        self.namespaces: dict[str, pulumi.Resource] = {}
        self.ingress_controllers: dict[str, pulumi.Resource] = {}

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        props = awaited(args.type_, args.props) or args.props
        md = props.get("metadata")
        if not isinstance(md, dict):
            return None
        kind = props.get("kind")
        if kind == "Namespace" and isinstance(md.get("name"), str):
            self.namespaces[md["name"]] = args.resource
            return None
        deps = [self.namespaces[ns]] if isinstance(ns := md.get("namespace"), str) and ns in self.namespaces else []
        spec = props.get("spec")
        if kind == "Ingress" and isinstance(spec, dict) and spec.get("ingressClassName") in self.ingress_controllers:
            deps.append(self.ingress_controllers[spec["ingressClassName"]])
        timeouts = (
            pulumi.CustomTimeouts(create=WORKLOAD_WAIT, update=WORKLOAD_WAIT)
            if kind in WORKLOADS and args.type_.startswith("kubernetes:apps/")
            else None
        )
        if not deps and timeouts is None:
            return None if props is args.props else pulumi.ResourceTransformationResult(props, args.opts)
        return pulumi.ResourceTransformationResult(
            props,
            pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=deps, custom_timeouts=timeouts)),
        )
