"""Compute: a stateless tier (the multi-tenant API or the admin UI).

ServiceAccount without a token, a restricted Deployment that keeps full capacity while
rolling, a ClusterIP Service and a PodDisruptionBudget. Credentials for the datastore,
broker and object store arrive as env vars read from Secrets (`env`) or as read-only
Secret volumes (`volumes` + `volume_mounts`), never literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from . import kube, meta
from .blueprint import Compute as ComputeResource
from .settings import ComputeSettings, Settings

LAYER = "compute"
# The demo image's own flags; a user image runs its own entrypoint unless args are configured.
DEMO_ARGS = ("--port", "{port}")


@dataclass(frozen=True)
class ComputeArgs:
    namespace: str
    name: str
    subtype: str
    replicas_min: int
    replicas_max: int
    image: str
    port: int
    args: tuple[str, ...]
    probe_path: str
    resources: dict
    multi_zone: bool
    public: bool
    autoscaled: bool
    env: tuple = field(default=())
    # Pod volumes and this container's mounts of them, filled by the backing layers like `env`.
    volumes: tuple = field(default=())
    volume_mounts: tuple = field(default=())

    @classmethod
    def of(
        cls,
        resource: ComputeResource,
        settings: Settings,
        namespace: str,
        multi_zone: bool,
        public: bool,
        autoscaled: bool,
        env: tuple = (),
        volumes: tuple = (),
        volume_mounts: tuple = (),
    ) -> ComputeArgs:
        own = settings.computes.get(resource.nome, ComputeSettings())
        if own.image is None:
            image, args = settings.image("compute-demo"), tuple(a.format(port=own.port) for a in DEMO_ARGS)
        else:
            image, args = own.image, own.args or ()
        return cls(
            namespace=namespace,
            name=resource.nome,
            subtype=resource.config.subtipo,
            replicas_min=resource.config.replicas_min,
            replicas_max=resource.config.max_replicas,
            image=image,
            port=own.port,
            args=args,
            probe_path=own.probe_path,
            resources=own.resources(),
            multi_zone=multi_zone,
            public=public,
            autoscaled=autoscaled,
            env=tuple(env),
            volumes=tuple(volumes),
            volume_mounts=tuple(volume_mounts),
        )


def pod_labels(args: ComputeArgs) -> dict:
    return meta.pod_labels(args.name, LAYER, args.public, {"b2b-platform.io/subtype": args.subtype})


def container_spec(args: ComputeArgs) -> dict:
    container = {
        "name": args.name,
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "ports": [{"name": "http", "containerPort": args.port, "protocol": "TCP"}],
        "env": [{"name": "PORT", "value": str(args.port)}, *args.env],
        "resources": args.resources,
        "securityContext": meta.container_security_context(),
        "readinessProbe": meta.http_probe(args.probe_path, "http", period=5, failures=3),
        "livenessProbe": meta.http_probe(args.probe_path, "http", period=10, failures=6),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *args.volume_mounts],
    }
    if args.args:
        container["args"] = list(args.args)
    return container


def deployment_spec(args: ComputeArgs) -> dict:
    pod = {
        "containers": [container_spec(args)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *args.volumes],
    }
    # Under an autoscaler the replica count is the autoscaler's: declaring it here would make
    # every `pulumi up` reset the live count (Kubernetes docs, "Migrating Deployments to HPA").
    return meta.deployment_spec(
        args.name, pod_labels(args), args.multi_zone, pod, None if args.autoscaled else args.replicas_min
    )


def service_spec(args: ComputeArgs) -> dict:
    return meta.http_service_spec(args.name)


class Compute(pulumi.ComponentResource):
    deployment_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    selector: dict

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:compute:Compute", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        md = meta.metadata(args.name, args.namespace, LAYER)
        deployment, service = kube.http_tier(name, md, deployment_spec(args), service_spec(args), child)
        self.deployment_name = deployment.metadata["name"]
        self.service_name = service.metadata["name"]
        self.selector = meta.selector(args.name)
        self.register_outputs({"deployment_name": self.deployment_name, "service_name": self.service_name})
