"""Archive: S3-compatible object storage for tenant uploads, inside the fabric.

One SeaweedFS process (`weed mini`: master, volume server, filer and S3 gateway) in a
single-replica StatefulSet whose PVC holds everything. Two buckets, created by SeaweedFS
itself at every start when missing (`-bucket`): the tenant bucket, where every object
lives under `<tenant id>/...`, and the backup bucket the Datastore writes to. Two key
pairs, each scoped to one bucket: the computes' (`<nome>-s3-app`) and the backup path's
(`<nome>-s3`, the contract the Datastore reads). Only the computes and the database pods
reach port 8333. With `publico: true` the tenant bucket is also served read-only, without
credentials, at `<publicHost>.<gateway base>` through the edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import kube, meta
from .blueprint import Archive as ArchiveResource
from .blueprint import Blueprint
from .contracts import ObjectStoreRef, Refs
from .settings import Settings

LAYER = "archive"
METRICS_PORT = 9327
# The filer's HTTP port inside the pod: only the kubelet's probes use it (no Service, no policy).
FILER_PORT = 8888
# `weed mini` saves the flags it ran with here and, at the next start, applies them to every
# flag left at its default (seaweedfs 4.44 weed/command/mini.go saveMiniConfiguration,
# loadMiniConfigurationFile, applyConfigFileOptions): a flag removed from weed_args would
# silently keep its old value. The init container deletes it, so these args are the whole truth.
MINI_OPTIONS = "mini.options"
# Any non-root uid works: the image's files are world-readable and everything SeaweedFS
# writes is on the data volume (fsGroup) or /tmp. A high uid keeps clear of host users.
RUN_AS = meta.RUN_AS
DATA_DIR = "/data"
CONFIG_DIR = "/etc/seaweedfs/s3"
CONFIG_KEY = "s3.json"
# SeaweedFS accepts any region in signatures; SDKs refuse to sign without one.
REGION = "us-east-1"
# Per-bucket grants: `Action:<bucket>` limits an identity to that bucket.
APP_ACTIONS = ("Read", "Write", "List", "Tagging")
BACKUP_ACTIONS = ("Read", "Write", "List")


@dataclass(frozen=True)
class ArchiveArgs:
    namespace: str
    name: str
    size_gb: int
    image: str
    resources: dict
    storage_class: str | None
    protect: bool
    purge: bool
    # The database pods, which write backups here (None without a datastore).
    database_selector: dict | None
    # `publico: true`: the read-only host, its ingress class, and TLS through this issuer.
    public_host: str | None
    ingress_class: str
    tls_issuer: str | None
    # Resources that must exist before the Certificate (cert-manager's release), when the stack installs add-ons.
    requires: tuple = ()
    domain: str = meta.CLUSTER_DOMAIN

    @classmethod
    def of(cls, resource: ArchiveResource, bp: Blueprint, settings: Settings, requires: tuple = ()) -> ArchiveArgs:
        refs = Refs.of(bp, domain=settings.cluster_domain)
        own = settings.archive
        gateway = bp.one("gateway")
        # Blueprint validation guarantees a gateway whenever the archive is public.
        public = resource.config.publico and gateway is not None
        return cls(
            namespace=refs.namespace,
            name=resource.nome,
            size_gb=resource.config.tamanho_gb,
            image=settings.image("archive"),
            resources=own.resources(),
            storage_class=settings.storage_class,
            protect=settings.protect,
            purge=own.purge,
            # The instances' barman-cloud sidecars back up here; poolers and Jobs have no business.
            database_selector=refs.database.instance_selector if refs.database else None,
            public_host=f"{own.public_host}.{gateway.config.base_domain}" if public else None,
            ingress_class=settings.edge.ingress_class,
            tls_issuer=settings.edge.cluster_issuer if public and gateway.config.tls else None,
            requires=tuple(requires),
            domain=settings.cluster_domain,
        )

    @property
    def ref(self) -> ObjectStoreRef:
        return ObjectStoreRef(self.name, self.namespace, self.domain)


def compute_env(ref: ObjectStoreRef) -> tuple[dict, ...]:
    """What a compute needs to store tenant files; AWS SDKs read these names on their own."""
    return (
        {"name": "AWS_ENDPOINT_URL_S3", "value": ref.endpoint},
        {"name": "AWS_REGION", "value": REGION},
        {"name": "S3_BUCKET", "value": ref.tenant_bucket},
        meta.secret_env("AWS_ACCESS_KEY_ID", ref.app_credentials_secret, "accessKeyId"),
        meta.secret_env("AWS_SECRET_ACCESS_KEY", ref.app_credentials_secret, "secretAccessKey"),
    )


def identities(args: ArchiveArgs, app: tuple[str, str], backup: tuple[str, str]) -> dict:
    """SeaweedFS's static S3 identities (`-s3.config`); `app`/`backup` are (access key, secret key)."""
    ref = args.ref

    def identity(name: str, keys: tuple[str, str], actions: tuple[str, ...], bucket: str) -> dict:
        return {
            "name": name,
            "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}],
            "actions": [f"{a}:{bucket}" for a in actions],
        }

    found = [
        identity("platform", app, APP_ACTIONS, ref.tenant_bucket),
        identity("backup", backup, BACKUP_ACTIONS, ref.backup_bucket),
    ]
    if args.public_host:
        # GET/HEAD of a known key only: no List, so the public cannot enumerate tenants' files.
        found.append({"name": "anonymous", "actions": [f"Read:{ref.tenant_bucket}"]})
    return {"identities": found}


def weed_args(args: ArchiveArgs) -> list[str]:
    ref = args.ref
    return [
        "mini",
        f"-dir={DATA_DIR}",
        # Master, volume server and filer find each other on loopback under a name that
        # survives pod restarts. `-ip.bind` is one address for every component, S3 included
        # (seaweedfs 4.44 weed/command/mini.go: miniBindIp → master, filer, volume, s3), so
        # the master, filer and volume ports can't be bound to loopback alone: the
        # NetworkPolicy admits 8333 only, and nothing in the fabric reaches the others.
        "-ip=127.0.0.1",
        "-ip.bind=0.0.0.0",
        f"-filer.port={FILER_PORT}",
        f"-s3.port={ref.port}",
        f"-s3.config={CONFIG_DIR}/{CONFIG_KEY}",
        f"-bucket={ref.tenant_bucket},{ref.backup_bucket}",
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-s3.iam=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        f"-metricsPort={METRICS_PORT}",
    ]


def pod_labels(args: ArchiveArgs) -> dict:
    return meta.pod_labels(args.name, LAYER, bool(args.public_host))


def container_spec(args: ArchiveArgs) -> dict:
    return {
        "name": "seaweedfs",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "args": weed_args(args),
        "env": [
            {"name": "HOME", "value": "/tmp"},
            meta.go_memory_limit(args.resources["limits"]["memory"]),
        ],
        "ports": [
            {"name": "s3", "containerPort": args.ref.port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
            {"name": "filer", "containerPort": FILER_PORT, "protocol": "TCP"},
        ],
        "resources": args.resources,
        "securityContext": meta.container_security_context(),
        # `-bucket` creates the buckets after the S3 gateway already answers /healthz, and only
        # logs a failure (mini.go ensureMiniBuckets); the filer answers 404 for a bucket that
        # isn't there (weed/server/filer_server_handlers_read.go). So the pod is started only
        # once the tenant bucket exists (else the kubelet restarts it, which retries), and ready
        # only while the backup bucket exists too.
        "startupProbe": meta.http_probe(bucket_probe_path(args.ref.tenant_bucket), "filer", period=5, failures=60),
        "readinessProbe": meta.http_probe(bucket_probe_path(args.ref.backup_bucket), "filer", period=10, failures=3),
        "livenessProbe": meta.http_probe("/healthz", "s3", period=20, failures=6),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "s3-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def bucket_probe_path(bucket: str) -> str:
    # `metadata=true` answers 200 with the entry, where a directory listing may be refused (403).
    return f"/buckets/{bucket}?metadata=true"


def clear_options_container(args: ArchiveArgs) -> dict:
    return {
        "name": "clear-mini-options",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "command": ["rm", "-f", f"{DATA_DIR}/{MINI_OPTIONS}"],
        "resources": meta.resources("10m", "16Mi", "100m", "32Mi"),
        "securityContext": meta.container_security_context(),
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
    }


def volume_claim(args: ArchiveArgs) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{args.size_gb}Gi"}}}
    if args.storage_class:
        spec["storageClassName"] = args.storage_class
    return {"metadata": {"name": "data", "labels": meta.labels(args.name, LAYER)}, "spec": spec}


def statefulset_spec(args: ArchiveArgs) -> dict:
    return {
        # One writer per volume: SeaweedFS here is a single process on a ReadWriteOnce disk.
        "replicas": 1,
        # The governing Service must be headless (StatefulSet API: serviceName).
        "serviceName": headless_name(args),
        "selector": {"matchLabels": meta.selector(args.name)},
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": "Delete" if args.purge else "Retain",
            "whenScaled": "Retain",
        },
        "template": {
            "metadata": {"labels": pod_labels(args)},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": meta.pod_security_context(RUN_AS) | {"fsGroupChangePolicy": "OnRootMismatch"},
                "terminationGracePeriodSeconds": 30,
                "initContainers": [clear_options_container(args)],
                "containers": [container_spec(args)],
                "volumes": [
                    {"name": "s3-config", "secret": {"secretName": f"{args.name}-s3-config", "defaultMode": 0o440}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                ],
            },
        },
        "volumeClaimTemplates": [volume_claim(args)],
    }


def service_spec(args: ArchiveArgs) -> dict:
    return meta.service_spec(args.name, {"s3": args.ref.port, "metrics": METRICS_PORT})


def headless_name(args: ArchiveArgs) -> str:
    return f"{args.name}-headless"


def headless_spec(args: ArchiveArgs) -> dict:
    return {
        "clusterIP": "None",
        "selector": meta.selector(args.name),
        "ports": meta.service_ports({"s3": args.ref.port}),
    }


def policy_spec(args: ArchiveArgs) -> dict:
    """Computes and (when there is a datastore) the database instances reach S3; nothing else in the fabric."""
    peers = [meta.pod_peer({meta.LAYER_LABEL: "compute"})]
    if args.database_selector:
        peers.append(meta.pod_peer(args.database_selector))
    return meta.allow_ingress(meta.selector(args.name), peers, meta.tcp_ports(args.ref.port))


def ingress_spec(args: ArchiveArgs) -> dict:
    """Only the tenant bucket's path goes through the edge (path-style S3 URLs)."""
    spec = {
        "ingressClassName": args.ingress_class,
        "rules": [
            {
                "host": args.public_host,
                "http": {
                    "paths": [
                        {
                            "path": f"/{args.ref.tenant_bucket}",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": args.name, "port": {"name": "s3"}}},
                        }
                    ]
                },
            }
        ],
    }
    if args.tls_issuer:
        spec["tls"] = [{"hosts": [args.public_host], "secretName": f"{args.name}-public-tls"}]
    return spec


def certificate_spec(args: ArchiveArgs) -> dict:
    return {
        "secretName": f"{args.name}-public-tls",
        "dnsNames": [args.public_host],
        "issuerRef": {"name": args.tls_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }


class Archive(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    endpoint: str
    tenant_bucket: str
    backup_bucket: str
    credentials_secret: pulumi.Output[str]
    public_url: str | None
    env: tuple[dict, ...]
    # Nothing to mount into the computes: everything they need arrives through `env`.
    volumes: tuple[dict, ...] = ()
    volume_mounts: tuple[dict, ...] = ()

    def __init__(self, name: str, args: ArchiveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:archive:Archive", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ref = args.ref

        def md(object_name: str) -> dict:
            return meta.metadata(object_name, args.namespace, LAYER)

        def key_pair(role: str):
            access = random.RandomPassword(
                f"{name}-{role}-access-key", length=20, special=False, lower=False, opts=child
            )
            secret = random.RandomPassword(f"{name}-{role}-secret-key", length=40, special=False, opts=child)
            return access.result, secret.result

        app, backup = key_pair("app"), key_pair("backup")
        credentials = kube.Object(
            f"{name}-backup-credentials",
            "v1",
            "Secret",
            metadata=md(ref.credentials_secret),
            stringData={"accessKeyId": backup[0], "secretAccessKey": backup[1]},
            opts=child,
        )
        kube.Object(
            f"{name}-app-credentials",
            "v1",
            "Secret",
            metadata=md(ref.app_credentials_secret),
            stringData={"accessKeyId": app[0], "secretAccessKey": app[1]},
            opts=child,
        )
        config = pulumi.Output.all(*app, *backup).apply(
            lambda k: json.dumps(identities(args, (k[0], k[1]), (k[2], k[3])), indent=2, sort_keys=True)
        )
        kube.Object(
            f"{name}-s3-config",
            "v1",
            "Secret",
            metadata=md(f"{args.name}-s3-config"),
            stringData={CONFIG_KEY: pulumi.Output.secret(config)},
            opts=child,
        )

        # protect: `pulumi destroy` or a blueprint without this resource stops instead of deleting the
        # store; retain_on_delete: unless purged, a delete leaves the StatefulSet (and its PVC, kept by
        # the retention policy even without it) in the cluster.
        kube.Object(
            f"{name}-statefulset",
            "apps/v1",
            "StatefulSet",
            metadata=md(args.name),
            spec=statefulset_spec(args),
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=not args.purge),
        )
        service = kube.Object(
            f"{name}-service", "v1", "Service", metadata=md(args.name), spec=service_spec(args), opts=child
        )
        kube.Object(
            f"{name}-headless",
            "v1",
            "Service",
            metadata=md(headless_name(args)),
            spec=headless_spec(args),
            opts=child,
        )
        kube.Object(
            f"{name}-policy",
            "networking.k8s.io/v1",
            "NetworkPolicy",
            metadata=md(f"{args.name}-s3"),
            spec=policy_spec(args),
            opts=child,
        )

        self.public_url = None
        if args.public_host:
            kube.Object(
                f"{name}-public",
                "networking.k8s.io/v1",
                "Ingress",
                metadata=meta.ingress_metadata(md(args.name), bool(args.tls_issuer)),
                spec=ingress_spec(args),
                opts=child,
            )
            if args.tls_issuer:
                k8s.apiextensions.CustomResource(
                    f"{name}-public-certificate",
                    api_version="cert-manager.io/v1",
                    kind="Certificate",
                    metadata=md(f"{args.name}-public"),
                    spec=certificate_spec(args),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.requires)),
                )
            scheme = "https" if args.tls_issuer else "http"
            self.public_url = f"{scheme}://{args.public_host}/{ref.tenant_bucket}"

        self.service_name = service.metadata["name"]
        self.endpoint = ref.endpoint
        self.tenant_bucket = ref.tenant_bucket
        self.backup_bucket = ref.backup_bucket
        self.credentials_secret = credentials.metadata["name"]
        self.env = compute_env(ref)
        self.register_outputs(
            {
                "service_name": self.service_name,
                "endpoint": self.endpoint,
                "tenant_bucket": self.tenant_bucket,
                "backup_bucket": self.backup_bucket,
                "credentials_secret": self.credentials_secret,
                "public_url": self.public_url,
            }
        )
