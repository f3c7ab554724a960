"""Addons: the cluster add-ons the platform's custom resources and edge need.

A stack with `addons: true` (the kind stack) installs them from this program; a production
stack points at a cluster that already runs them and leaves this component out. Each add-on
is a `helm.v3.Release` (Helm runs the charts' hooks: cert-manager's startup check,
prometheus-operator's webhook certificate jobs), pinned to an exact chart version and repo,
in its own namespace. The one exception is the Barman Cloud plugin: CloudNativePG discovers
plugins in its own namespace, so the plugin must live beside the operator (plugin docs,
"Installation").

`requires(api_group)` names the releases that install a CRD group, so every custom resource
of the platform can depend on its operator and one `pulumi up` on an empty cluster converges.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from . import kube, meta
from .settings import Settings

LAYER = "addons"

# Our own pairing, not an upstream one: chart 0.7.0 ships plugin v0.13.0, and the plugin's
# 0.14.0 docs only describe manifest/Kustomize installs. plugin-barman-cloud has no change in
# api/, config/ or kubernetes/ between v0.13.0 and v0.14.0 (CRDs, RBAC, Deployment), so the
# chart's objects are those of the v0.14.0 manifest with the image tags set.
BARMAN_CLOUD_PLUGIN = "v0.14.0"
# Traefik needs hostPorts 80/443 on kind, which Pod Security `baseline` already forbids.
HOST_PORT_LEVEL = "privileged"
# Helm leaves an object carrying this annotation in place when the release is uninstalled.
KEEP = "helm.sh/resource-policy"


@dataclass(frozen=True)
class Release:
    key: str
    chart: str
    version: str
    repo: str
    namespace: str
    values: dict
    # API groups whose CRDs the chart installs.
    crd_groups: tuple[str, ...] = ()
    # Keys of releases that must be ready before this one installs.
    after: tuple[str, ...] = ()
    # Pod Security level enforced on the namespace (audit and warn stay at `restricted`).
    pod_security: str = "restricted"
    # The IngressClass whose controller the release runs: Ingresses of that class wait for it.
    ingress_class: str | None = None


@dataclass(frozen=True)
class AddonsArgs:
    releases: tuple[Release, ...]

    @classmethod
    def of(cls, settings: Settings, https: bool = False) -> AddonsArgs:
        return cls(releases(settings, https))


def traefik_values(settings: Settings, https: bool) -> dict:
    """One Traefik on the node kind maps ports 80/443 to (labelled ingress-ready=true).

    `https` (the gateway has `tls: true`): plain HTTP answers every host with a permanent
    redirect to the websecure entry point. traefik/traefik-helm-chart v41.3.0: the key is
    `ports.<name>.http.redirections.entryPoint` (values.yaml; templates/_podtemplate.tpl turns
    it into `--entryPoints.web.http.redirections.entryPoint.*` and fails on an unknown `to`);
    values.schema.json forbids the pre-v39 `ports.web.redirections` (additionalProperties false).
    """
    web: dict = {"hostPort": 80}
    if https:
        web["http"] = {"redirections": {"entryPoint": {"to": "websecure", "scheme": "https", "permanent": True}}}
    return {
        "deployment": {"kind": "Deployment", "replicas": 1},
        # A second pod can't bind the same hostPorts on the one edge node: replace, don't surge.
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
        "ingressClass": {"enabled": True, "isDefaultClass": False, "name": settings.edge.ingress_class},
        "providers": {
            "kubernetesIngress": {"publishedService": {"enabled": False}, "ingressEndpoint": {"ip": "127.0.0.1"}}
        },
        "ports": {"web": web, "websecure": {"hostPort": 443}},
        "service": {"spec": {"type": "ClusterIP"}},
        "nodeSelector": {"ingress-ready": "true"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
    }


def nack_values() -> dict:
    """No `jetstream.nats.url`: only then does the chart pass `-crd-connect` instead of `-s=<url>`.

    nack chart 0.34.0 templates/deployment-jetstream-controller.yml emits `-s` when the url is
    set, else `-crd-connect`; NACK (controllers/jetstream/controller.go, getAccountOverrides)
    reads an `Account`'s servers and user Secret only with `-crd-connect`. With `-s` it would
    open one anonymous connection, which our broker refuses, and never start.
    """
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": meta.RUN_AS,
            "runAsGroup": meta.RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containerSecurityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "additionalVolumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        "additionalVolumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def releases(settings: Settings, https: bool = False) -> tuple[Release, ...]:
    """Every add-on, pinned. Versions checked against each chart's Chart.yaml (see docs/addons.md)."""
    return (
        Release(
            "cert-manager",
            "cert-manager",
            "v1.21.1",
            "https://charts.jetstack.io",
            settings.edge.cert_manager_namespace,
            {"crds": {"enabled": True, "keep": True}},
            crd_groups=("cert-manager.io", "acme.cert-manager.io"),
        ),
        Release(
            "cloudnative-pg",
            "cloudnative-pg",
            "0.29.0",
            "https://cloudnative-pg.github.io/charts",
            settings.datastore.operator_namespace,
            {
                "crds": {"create": True},
                # An operator upgrade swaps the instance manager inside running pods instead of a
                # rolling restart of every instance (cloudnative-pg v1.30.0 docs/src/operator_conf.md;
                # the chart's `config.data` is the operator's ConfigMap, charts cloudnative-pg-v0.29.0
                # templates/config.yaml, read through --config-map-name in templates/deployment.yaml).
                "config": {"data": {"ENABLE_INSTANCE_MANAGER_INPLACE_UPDATES": "true"}},
            },
            crd_groups=("postgresql.cnpg.io",),
        ),
        Release(
            "barman-cloud",
            "plugin-barman-cloud",
            "0.7.0",
            "https://cloudnative-pg.github.io/charts",
            settings.datastore.operator_namespace,
            {
                "crds": {"create": True},
                "image": {"tag": BARMAN_CLOUD_PLUGIN},
                "sidecarImage": {"tag": BARMAN_CLOUD_PLUGIN},
            },
            crd_groups=("barmancloud.cnpg.io",),
            # Its TLS certificates come from cert-manager; it registers with the operator beside it.
            after=("cert-manager", "cloudnative-pg"),
        ),
        Release(
            "traefik",
            "traefik",
            "41.3.0",
            "https://traefik.github.io/charts",
            settings.edge.controller_namespace,
            traefik_values(settings, https),
            crd_groups=("traefik.io",),
            pod_security=HOST_PORT_LEVEL,
            ingress_class=settings.edge.ingress_class,
        ),
        Release(
            "metrics-server",
            "metrics-server",
            "3.13.1",
            "https://kubernetes-sigs.github.io/metrics-server/",
            "metrics-server",
            # kind's kubelets serve self-signed certificates.
            {"args": ["--kubelet-insecure-tls"]},
        ),
        Release(
            "keda",
            "keda",
            "2.20.2",
            "https://kedacore.github.io/charts",
            settings.insight.keda_namespace,
            # Uninstalling the release must not delete the CRDs, and with them every ScaledObject
            # (charts v2.20.2 keda/templates/crds/*.yaml add `crds.additionalAnnotations`).
            {"crds": {"install": True, "additionalAnnotations": {KEEP: "keep"}}},
            crd_groups=("keda.sh", "eventing.keda.sh"),
        ),
        Release(
            # kube-prometheus-stack reduced to the operator and its CRDs: the platform's
            # Insight layer brings its own Prometheus CR, rules and monitors.
            "prometheus-operator",
            "kube-prometheus-stack",
            "88.5.3",
            "https://prometheus-community.github.io/helm-charts",
            "monitoring",
            {
                "crds": {"enabled": True},
                "defaultRules": {"create": False},
                "alertmanager": {"enabled": False},
                "grafana": {"enabled": False},
                "prometheus": {"enabled": False},
                "kubeStateMetrics": {"enabled": False},
                "nodeExporter": {"enabled": False},
                "kubernetesServiceMonitors": {"enabled": False},
                # serviceMonitor.selfMonitor (default true) renders a ServiceMonitor for the operator
                # (templates/prometheus-operator/servicemonitor.yaml at kube-prometheus-stack-88.5.3).
                "prometheusOperator": {
                    "enabled": True,
                    "kubeletService": {"enabled": False},
                    "serviceMonitor": {"selfMonitor": False},
                },
            },
            crd_groups=("monitoring.coreos.com",),
        ),
        Release(
            "nack",
            "nack",
            "0.34.0",
            "https://nats-io.github.io/k8s/helm/charts/",
            "nack",
            nack_values(),
            crd_groups=("jetstream.nats.io",),
        ),
    )


def namespace_labels(level: str) -> dict:
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        **{f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("audit", "warn")},
        **{f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("audit", "warn")},
    }


def namespace_levels(specs: tuple[Release, ...]) -> dict[str, str]:
    """Each namespace once, at the loosest level any of its releases needs."""
    order = ("restricted", "baseline", "privileged")
    levels: dict[str, str] = {}
    for r in specs:
        current = levels.get(r.namespace, "restricted")
        levels[r.namespace] = max(current, r.pod_security, key=order.index)
    return levels


def crd_owners(specs: tuple[Release, ...]) -> dict[str, tuple[str, ...]]:
    """API group → keys of the releases that install its CRDs."""
    owners: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        for group in spec.crd_groups:
            owners[group] = (*owners.get(group, ()), spec.key)
    return owners


def release_inputs(spec: Release) -> dict:
    """The `helm.v3.Release` inputs of one add-on, in the provider's camelCase."""
    return {
        "name": spec.key,
        "chart": spec.chart,
        "version": spec.version,
        "repositoryOpts": {"repo": spec.repo},
        "namespace": spec.namespace,
        "values": spec.values,
        # Image pulls on a fresh kind cluster are slow; Helm waits for every workload to be ready.
        "timeout": 900,
        # A failed, timed-out or cancelled install is uninstalled (Helm v3.20.2 pkg/action/install.go
        # failRelease; a failed upgrade is rolled back, the objects it created removed), so the next
        # `up` installs afresh instead of stopping at Helm's "cannot re-use a name that is still in use".
        "atomic": True,
        "cleanupOnFail": True,
        "maxHistory": 5,
    }


class Addons(pulumi.ComponentResource):
    releases: dict[str, kube.HelmRelease]
    ingress_controllers: dict[str, kube.HelmRelease]
    namespaces: dict[str, str]
    crd_owners: dict[str, tuple[str, ...]]

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:addons:Addons", name, None, opts)
        namespaces = {
            ns: kube.Object(
                f"{name}-{ns}-namespace",
                "v1",
                "Namespace",
                metadata={"name": ns, "labels": meta.labels(ns, LAYER, namespace_labels(level))},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for ns, level in namespace_levels(args.releases).items()
        }
        self.releases = {}
        for spec in args.releases:
            deps = [namespaces[spec.namespace], *(self.releases[key] for key in spec.after)]
            self.releases[spec.key] = kube.HelmRelease(
                f"{name}-{spec.key}", release_inputs(spec), opts=pulumi.ResourceOptions(parent=self, depends_on=deps)
            )
        self.crd_owners = crd_owners(args.releases)
        self.ingress_controllers = {
            spec.ingress_class: self.releases[spec.key] for spec in args.releases if spec.ingress_class
        }
        self.namespaces = {spec.key: spec.namespace for spec in args.releases}
        self.register_outputs({key: r.status for key, r in self.releases.items()})

    def requires(self, *api_groups: str) -> tuple:
        """The release(s) whose CRDs define `api_groups`; a CR of those groups depends on them."""
        unknown = [g for g in api_groups if g not in self.crd_owners]
        if unknown:
            # A typo here would silently drop the dependency and break `up` on an empty cluster.
            raise ValueError(
                f"no add-on installs CRDs of {', '.join(map(repr, unknown))}; known groups: "
                f"{', '.join(sorted(self.crd_owners))}"
            )
        keys = dict.fromkeys(key for g in api_groups for key in self.crd_owners[g])
        return tuple(self.releases[key] for key in keys)
