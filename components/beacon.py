"""Beacon: NATS for tenant lifecycle events (signup, plan change, offboarding).

Raw objects, not the upstream Helm chart: under Pulumi mocks a chart is a remote component
that is never expanded, so none of its objects could be schema-checked or tested offline,
and every field that Pod Security `restricted` looks at stays under this module's control.

Servers: a StatefulSet of 3 clustered servers spread across zones under `multi-zona`, 1
otherwise; with `jetstream` each keeps its file store on its own PVC. One NATS account
holds every user, each with the least it needs: `api` publishes lifecycle events only,
`billing` and `crm` only pull from their own durable consumer (with `jetstream: false`
they may only subscribe to the events), `nack` manages streams for the NACK controller.
Each user's replies come back on its own inbox prefix `_INBOX_<user>`, so no user can read
another's responses. The server config carries these credentials, so it is a Secret.

Events: subjects `tenants.<tenant id>.lifecycle.<event>`, one wildcard stream for every
tenant (no per-tenant object: onboarding a tenant changes nothing here), declared as a
NACK Stream with durable pull Consumers `billing` and `crm`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import kube, meta
from .blueprint import Beacon as BeaconResource
from .blueprint import Blueprint
from .contracts import BrokerRef, Refs
from .settings import Settings

LAYER = "beacon"
CLUSTER_PORT = 6222
MONITOR_PORT = 8222
METRICS_PORT = 7777
EVENTS = ("signup", "plan_changed", "offboarded")
CONSUMERS = ("billing", "crm")
PUBLISHER = "api"
ACCOUNT = "PLATFORM"
CONFIG_DIR = "/etc/nats"
CONFIG_KEY = "nats.conf"
STORE_DIR = "/data"
PID_FILE = "/var/run/nats/nats.pid"
LAME_DUCK = 30
# JetStream state for consumers and the API lives in memory too; keep it far below the container's limit.
MAX_MEMORY_STORE = 64 * 1024**2
EXPORTER_RESOURCES = meta.resources("10m", "32Mi", "100m", "64Mi")


@dataclass(frozen=True)
class BeaconArgs:
    namespace: str
    name: str
    jetstream: bool
    replicas: int
    multi_zone: bool
    image: str
    exporter_image: str
    resources: dict
    storage_gb: int
    storage_class: str | None
    protect: bool
    purge: bool
    stream_max_age: str
    stream_max_bytes: int
    duplicate_window: str
    nack_namespace: str
    # Resources that must exist before the NACK objects (its release and CRDs), when the stack installs add-ons.
    requires: tuple = ()
    domain: str = meta.CLUSTER_DOMAIN

    @classmethod
    def of(cls, resource: BeaconResource, bp: Blueprint, settings: Settings, requires: tuple = ()) -> BeaconArgs:
        own = settings.beacon
        return cls(
            namespace=Refs.of(bp).namespace,
            name=resource.nome,
            jetstream=resource.config.jetstream,
            replicas=3 if bp.multi_zone else 1,
            multi_zone=bp.multi_zone,
            image=settings.image("beacon"),
            exporter_image=settings.image("beacon-exporter"),
            resources=own.resources(),
            storage_gb=own.storage_gb,
            storage_class=settings.storage_class,
            protect=settings.protect,
            purge=own.purge,
            stream_max_age=own.stream_max_age,
            stream_max_bytes=own.stream_max_bytes,
            duplicate_window=own.stream_duplicate_window,
            nack_namespace=own.nack_namespace,
            requires=tuple(requires),
            domain=settings.cluster_domain,
        )

    @property
    def ref(self) -> BrokerRef:
        return BrokerRef(self.name, self.namespace, self.domain)

    @property
    def clustered(self) -> bool:
        return self.replicas > 1

    @property
    def users(self) -> tuple[str, ...]:
        return (PUBLISHER, *CONSUMERS, *(("nack",) if self.jetstream else ()))

    @property
    def headless(self) -> str:
        return f"{self.name}-headless"


def compute_env(ref: BrokerRef) -> tuple[dict, ...]:
    """The computes connect as `api`; replies must use its inbox prefix or the server drops them."""
    secret = ref.user_secret(PUBLISHER)
    return (
        {"name": "NATS_URL", "value": ref.url},
        meta.secret_env("NATS_USER", secret, "username"),
        meta.secret_env("NATS_PASSWORD", secret, "password"),
        {"name": "NATS_INBOX_PREFIX", "value": inbox_prefix(PUBLISHER)},
        {"name": "NATS_LIFECYCLE_SUBJECT", "value": ref.lifecycle_subject("{tenant}", "{event}")},
    )


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}"


def event_subjects(ref: BrokerRef) -> list[str]:
    return [ref.lifecycle_subject("*", event) for event in EVENTS]


def permissions(args: BeaconArgs, user: str) -> dict:
    ref = args.ref
    own_inbox = [f"{inbox_prefix(user)}.>"]
    if user == PUBLISHER:
        return {"publish": {"allow": event_subjects(ref)}, "subscribe": {"allow": own_inbox}}
    if user in CONSUMERS and not args.jetstream:
        return {"publish": {"deny": [">"]}, "subscribe": {"allow": event_subjects(ref)}}
    if user in CONSUMERS:
        stream = ref.lifecycle_stream
        return {
            "publish": {
                "allow": [
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{user}",
                    f"$JS.API.CONSUMER.INFO.{stream}.{user}",
                    # Both ack reply formats: `$JS.ACK.<stream>.<consumer>...` and, with a JetStream
                    # domain and account hash, `$JS.ACK.<domain>.<account>.<stream>.<consumer>...`
                    # (nats-io/nats.go internal/parser/parse.go: 9 and 12 tokens).
                    f"$JS.ACK.{stream}.{user}.>",
                    f"$JS.ACK.*.*.{stream}.{user}.>",
                ]
            },
            "subscribe": {"allow": own_inbox},
        }
    # nack: the JetStream API, nothing else (NACK's client uses the default inbox prefix).
    return {"publish": {"allow": ["$JS.API.>"]}, "subscribe": {"allow": ["_INBOX.>"]}}


def route_urls(args: BeaconArgs, password: str) -> list[str]:
    """Every server, itself included (NATS ignores a route to itself): `<pod>.<headless service>`."""
    hosts = [
        meta.service_host(f"{args.name}-{i}.{args.headless}", args.namespace, args.domain) for i in range(args.replicas)
    ]
    return [f"nats://route:{password}@{host}:{CLUSTER_PORT}" for host in hosts]


def server_config(args: BeaconArgs, passwords: Mapping[str, str]) -> dict:
    """nats-server configuration (JSON is valid NATS config); `passwords` by user, plus `route` when clustered.

    The server name comes from the command line (`--name $(POD_NAME)`), so one config serves every pod.
    """
    account: dict = {
        "users": [{"user": u, "password": passwords[u], "permissions": permissions(args, u)} for u in args.users]
    }
    conf: dict = {
        "listen": f"0.0.0.0:{args.ref.port}",
        "http": f"0.0.0.0:{MONITOR_PORT}",
        "pid_file": PID_FILE,
        "lame_duck_duration": f"{LAME_DUCK}s",
        "lame_duck_grace_period": "10s",
        "accounts": {ACCOUNT: account},
    }
    if args.jetstream:
        account["jetstream"] = "enabled"
        conf["jetstream"] = {
            "store_dir": STORE_DIR,
            "max_file_store": args.storage_gb * 1024**3 * 9 // 10,
            "max_memory_store": MAX_MEMORY_STORE,
        }
    if args.clustered:
        conf["cluster"] = {
            "name": args.name,
            "listen": f"0.0.0.0:{CLUSTER_PORT}",
            "authorization": {"user": "route", "password": passwords["route"], "timeout": 2},
            "routes": route_urls(args, passwords["route"]),
            # Clients keep the Service URL they were given instead of learning pod IPs that
            # change at each restart (the upstream nats chart's `cluster.noAdvertise: true`).
            "no_advertise": True,
        }
    return conf


def render_config(args: BeaconArgs, passwords: Mapping[str, str]) -> str:
    return json.dumps(server_config(args, passwords), indent=2, sort_keys=True)


def nats_container(args: BeaconArgs) -> dict:
    ports = [{"name": "client", "containerPort": args.ref.port, "protocol": "TCP"}]
    if args.clustered:
        ports.append({"name": "cluster", "containerPort": CLUSTER_PORT, "protocol": "TCP"})
    ports.append({"name": "http-monitor", "containerPort": MONITOR_PORT, "protocol": "TCP"})
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "pid", "mountPath": "/var/run/nats"},
    ]
    if args.jetstream:
        mounts.append({"name": "data", "mountPath": STORE_DIR})
    # Only a server whose JetStream is up counts as alive; a starting one gets the startup probe's patience.
    live = "/healthz?js-enabled-only=true" if args.jetstream else "/healthz"
    # Ready as soon as this server's JetStream is up, not when every stream has caught up: a
    # restarting clustered server must become an endpoint to catch up at all (upstream nats chart,
    # nats-io/k8s tag nats-2.14.2 helm/charts/nats/files/stateful-set/nats-container.yaml).
    ready = "/healthz?js-server-only=true" if args.jetstream else "/healthz"
    return {
        "name": "nats",
        "image": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--name", "$(POD_NAME)"],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            meta.go_memory_limit(args.resources["limits"]["memory"]),
        ],
        "ports": ports,
        "resources": args.resources,
        "securityContext": meta.container_security_context(),
        "startupProbe": meta.http_probe("/healthz", "http-monitor", period=5, failures=90),
        "readinessProbe": meta.http_probe(ready, "http-monitor", period=10, failures=3),
        "livenessProbe": meta.http_probe(live, "http-monitor", period=30, failures=3),
        # Lame duck mode: clients move to the other servers before this one stops.
        "lifecycle": {"preStop": {"exec": {"command": ["nats-server", f"--signal=ldm={PID_FILE}"]}}},
        "volumeMounts": mounts,
    }


def exporter_container(args: BeaconArgs) -> dict:
    flags = ["-connz", "-routez", "-subz", "-varz", "-healthz"] + (["-jsz=all"] if args.jetstream else [])
    return {
        "name": "exporter",
        "image": args.exporter_image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "args": [f"-port={METRICS_PORT}", *flags, f"http://localhost:{MONITOR_PORT}"],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "resources": EXPORTER_RESOURCES,
        # /metrics answers as soon as the exporter runs (even while NATS is down, with up=0),
        # so these probes only catch a hung exporter.
        "livenessProbe": meta.http_probe("/metrics", "metrics", period=30, failures=3),
        "readinessProbe": meta.http_probe("/metrics", "metrics", period=30, failures=3),
        "securityContext": meta.container_security_context(),
    }


def volume_claim(args: BeaconArgs) -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{args.storage_gb}Gi"}}}
    if args.storage_class:
        spec["storageClassName"] = args.storage_class
    return {"metadata": {"name": "data", "labels": meta.labels(args.name, LAYER)}, "spec": spec}


def statefulset_spec(args: BeaconArgs) -> dict:
    spec = {
        "replicas": args.replicas,
        "serviceName": args.headless,
        # All servers start together: a clustered JetStream needs its peers to elect a leader.
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": meta.selector(args.name)},
        "template": {
            "metadata": {"labels": meta.labels(args.name, LAYER)},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": meta.pod_security_context() | {"fsGroupChangePolicy": "OnRootMismatch"},
                "topologySpreadConstraints": meta.spread_constraints(
                    meta.selector(args.name), args.multi_zone, rollout_key=None
                ),
                "terminationGracePeriodSeconds": LAME_DUCK + 30,
                "containers": [nats_container(args), exporter_container(args)],
                "volumes": [
                    {"name": "config", "secret": {"secretName": f"{args.name}-config", "defaultMode": 0o440}},
                    {"name": "pid", "emptyDir": {"sizeLimit": "1Mi"}},
                ],
            },
        },
    }
    if args.jetstream:
        spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete" if args.purge else "Retain",
            "whenScaled": "Retain",
        }
        spec["volumeClaimTemplates"] = [volume_claim(args)]
    return spec


def service_spec(args: BeaconArgs) -> dict:
    return meta.service_spec(args.name, {"client": args.ref.port, "metrics": METRICS_PORT})


def headless_spec(args: BeaconArgs) -> dict:
    ports = meta.service_ports({"client": args.ref.port, **({"cluster": CLUSTER_PORT} if args.clustered else {})})
    return {
        "clusterIP": "None",
        # Peers must find each other before they are ready: readiness needs the cluster formed.
        "publishNotReadyAddresses": True,
        "selector": meta.selector(args.name),
        "ports": ports,
    }


def policy_specs(args: BeaconArgs) -> dict[str, dict]:
    ref = args.ref
    clients = [meta.pod_peer({meta.LAYER_LABEL: "compute"}), meta.pod_peer(ref.client_label)]
    if args.jetstream:
        clients.append(meta.namespace_peer(args.nack_namespace))
    specs = {"clients": meta.allow_ingress(ref.selector, clients, meta.tcp_ports(ref.port))}
    if args.clustered:
        specs["routes"] = meta.allow_ingress(ref.selector, [meta.pod_peer(ref.selector)], meta.tcp_ports(CLUSTER_PORT))
    return specs


def account_spec(args: BeaconArgs) -> dict:
    """NACK's connection to this server: the `nack` user's Secret, read in this namespace."""
    return {
        "servers": [args.ref.url],
        "user": {"secret": {"name": args.ref.user_secret("nack")}, "user": "username", "password": "password"},
    }


def stream_spec(args: BeaconArgs) -> dict:
    return {
        "name": args.ref.lifecycle_stream,
        "description": "Tenant lifecycle events (signup, plan change, offboarding) for billing and CRM",
        "subjects": event_subjects(args.ref),
        "retention": "limits",
        "storage": "file",
        "replicas": args.replicas,
        "maxAge": args.stream_max_age,
        "maxBytes": args.stream_max_bytes,
        "maxMsgSize": 64 * 1024,
        "discard": "old",
        "duplicateWindow": args.duplicate_window,
        "account": args.name,
        # Deleting the custom resource leaves the stream and its events on the servers.
        "preventDelete": True,
    }


def consumer_spec(args: BeaconArgs, durable: str) -> dict:
    return {
        "durableName": durable,
        "streamName": args.ref.lifecycle_stream,
        "description": f"{durable}: pulls every tenant lifecycle event, acknowledging each one",
        "deliverPolicy": "all",
        "ackPolicy": "explicit",
        "ackWait": "30s",
        "maxDeliver": 20,
        "maxAckPending": 1000,
        "replayPolicy": "instant",
        "account": args.name,
        "preventDelete": True,
    }


class Beacon(pulumi.ComponentResource):
    url: str
    service_name: pulumi.Output[str]
    stream: str | None
    consumers: tuple[str, ...]
    user_secrets: dict[str, str]
    env: tuple[dict, ...]
    # Nothing to mount into the computes: everything they need arrives through `env`.
    volumes: tuple[dict, ...] = ()
    volume_mounts: tuple[dict, ...] = ()

    def __init__(self, name: str, args: BeaconArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:beacon:Beacon", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ref = args.ref

        def md(object_name: str) -> dict:
            return meta.metadata(object_name, args.namespace, LAYER)

        roles = (*args.users, *(("route",) if args.clustered else ()))
        passwords = {
            role: random.RandomPassword(f"{name}-{role}-password", length=32, special=False, opts=child).result
            for role in roles
        }
        self.user_secrets = {}
        for user in args.users:
            kube.Object(
                f"{name}-{user}-credentials",
                "v1",
                "Secret",
                metadata=md(ref.user_secret(user)),
                type="kubernetes.io/basic-auth",
                stringData={"username": user, "password": passwords[user]},
                opts=child,
            )
            self.user_secrets[user] = ref.user_secret(user)
        config = pulumi.Output.all(**passwords).apply(lambda p: render_config(args, p))
        kube.Object(
            f"{name}-config",
            "v1",
            "Secret",
            metadata=md(f"{args.name}-config"),
            stringData={CONFIG_KEY: pulumi.Output.secret(config)},
            opts=child,
        )

        servers = kube.Object(
            f"{name}-statefulset",
            "apps/v1",
            "StatefulSet",
            metadata=md(args.name),
            spec=statefulset_spec(args),
            # The JetStream file store lives in these servers' PVCs: refused while protected, and left
            # in the cluster by a delete unless purged.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect and args.jetstream,
                retain_on_delete=args.jetstream and not args.purge,
            ),
        )
        service = kube.Object(
            f"{name}-service", "v1", "Service", metadata=md(args.name), spec=service_spec(args), opts=child
        )
        kube.Object(
            f"{name}-headless", "v1", "Service", metadata=md(args.headless), spec=headless_spec(args), opts=child
        )
        kube.Object(
            f"{name}-pdb",
            "policy/v1",
            "PodDisruptionBudget",
            metadata=md(args.name),
            spec=meta.pdb_spec(ref.selector),
            opts=child,
        )
        for role, spec in policy_specs(args).items():
            kube.Object(
                f"{name}-{role}-policy",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                metadata=md(f"{args.name}-{role}"),
                spec=spec,
                opts=child,
            )

        self.stream = None
        self.consumers = ()
        if args.jetstream:
            after_nack = list(args.requires)
            account = k8s.apiextensions.CustomResource(
                f"{name}-nack-account",
                api_version="jetstream.nats.io/v1beta2",
                kind="Account",
                metadata=md(args.name),
                spec=account_spec(args),
                opts=pulumi.ResourceOptions(parent=self, depends_on=after_nack),
            )
            stream = k8s.apiextensions.CustomResource(
                f"{name}-stream",
                api_version="jetstream.nats.io/v1beta2",
                kind="Stream",
                metadata=md(ref.lifecycle_stream),
                spec=stream_spec(args),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*after_nack, account, servers],
                    protect=args.protect,
                    retain_on_delete=not args.purge,
                ),
            )
            for durable in CONSUMERS:
                k8s.apiextensions.CustomResource(
                    f"{name}-{durable}-consumer",
                    api_version="jetstream.nats.io/v1beta2",
                    kind="Consumer",
                    metadata=md(f"{args.name}-{durable}"),
                    spec=consumer_spec(args, durable),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*after_nack, stream]),
                )
            self.stream = ref.lifecycle_stream
            self.consumers = CONSUMERS

        self.url = ref.url
        self.service_name = service.metadata["name"]
        self.env = compute_env(ref)
        self.register_outputs(
            {
                "url": self.url,
                "service_name": self.service_name,
                "stream": self.stream,
                "consumers": list(self.consumers),
                "user_secrets": self.user_secrets,
            }
        )
