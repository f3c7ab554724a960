"""Datastore: one CloudNativePG cluster shared by every tenant, reached through PgBouncer.

Cluster `<nome>` (1 instance, or 3 with `ha`: zone anti-affinity under multi-zona), a
transaction-mode Pooler `<nome>-pooler-rw`, a Database holding the per-tenant schemas,
backups to the archive through the Barman Cloud plugin, PodMonitors and the network
policies of the flows the database needs.

Tenants are entries in shared objects, never objects of their own: a role in the Cluster's
`managed.roles` and (schema isolation) a schema in the Database. A business tenant therefore
adds no Pulumi resource; an enterprise tenant adds the basic-auth Secret CNPG's
`passwordSecret` reads (its password an HMAC of one master RandomPassword,
docs/layers/datastore.md) and a key in the one Secret the computes mount, `<nome>-tenant-logins`, so
onboarding it changes no pod spec. What
CloudNativePG does with those lists (checked in its v1.30.0 source,
internal/management/controller/roles/roles.go and database_objects.go):
- an entry removed from a list is ignored, the role or schema stays with its data;
- `ensure: absent` runs a plain `DROP ROLE IF EXISTS` / `DROP SCHEMA IF EXISTS` (no
  CASCADE), which PostgreSQL refuses while the schema has tables or the role owns objects;
- `inRoles` is reconciled both ways: memberships not listed are revoked.
So a removed tenant stays listed while its data is kept (`removedTenants`: a tombstone role
with no login, password or memberships, the router's membership revoked), and `purgeTenants`
renders `ensure: absent` after `tenancy.purge_tenant()` emptied it.

Platform SQL (sql/migrations) reaches new and existing databases alike through the
migrations Job (`migrations_job`, components/migrations.py), never through initdb. A database
restored from backups (`datastore.recovery`, `bootstrap`) is an existing one: the Job, which
waits for the Cluster's Ready, finds its applied files recorded and applies only newer ones.

pgaudit (`audit.database`) is only `pgaudit.*` parameters: CloudNativePG 1.30 adds the
library to `shared_preload_libraries` while any is set and runs CREATE EXTENSION / DROP
EXTENSION pgaudit itself in every database that accepts connections (pkg/postgres
configuration.go ManagedExtensions, instance_controller.go reconcileExtensions); listing
it in the Database's `extensions` too would make two controllers own one extension.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import kube, meta, migrations
from .blueprint import Blueprint
from .blueprint import Datastore as DatastoreResource
from .connections import ConnectionBudget
from .contracts import LOGIN_GROUP, RLS_GROUP, DatabaseRef, ObjectStoreRef, Refs, present, tenant_role
from .migrations import Migration
from .settings import Settings, Tenant, connection_budget

LAYER = "datastore"
CNPG = "postgresql.cnpg.io/v1"
BARMAN = "barmancloud.cnpg.io/v1"
MONITORING = "monitoring.coreos.com/v1"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
RECOVERY_SOURCE = "origin"  # the externalClusters entry a recovery bootstrap reads (datastore.recovery)
POSTGRES_PORT = 5432
STATUS_PORT = 8000  # CNPG instance manager: health and status, called by the operator and peers
# The migrations Job's login (components/migrations.py). A superuser: the platform SQL creates an
# event trigger and replaces functions `postgres` owns, which nothing less may do; CNPG's own
# superuser login stays disabled (`enableSuperuserAccess: false`), and this one is let in by
# pg_hba only to the application database, over TLS, from the Job's pods (`migrator_hba`).
MIGRATOR_ROLE = "platform_migrator"
MIGRATIONS_SELECTOR = "migrations"  # the Cluster's podSelectorRefs entry naming the Job's pods
MIGRATIONS_MOUNT = "/migrations"
MIGRATIONS_DEADLINE = 900  # seconds: a Job still running then fails, and so does `pulumi up`
RESTRICTED_SECCOMP = {"type": "RuntimeDefault"}
# A commit returns once any one standby has it (quorum ANY 1 of the two, which run in other
# zones under multi-zona): losing a zone loses no committed transaction. `required`: with no
# standby up, writes wait rather than silently turning asynchronous (cloudnative-pg v1.30.0
# pkg/postgres/replication/explicit.go; `preferred` would drop to asynchronous instead).
SYNCHRONOUS_QUORUM = {"method": "any", "number": 1, "dataDurability": "required"}
# Set beside `pgaudit.log` whenever pgaudit is on.
PGAUDIT_COMPANIONS = {
    # Catalog-only statements (psql's \d, ORM and driver introspection) are nobody's tenant data.
    "pgaudit.log_catalog": "off",
    # One record per table touched, named schema-qualified: a write in tenant_<id>.* names its tenant.
    "pgaudit.log_relation": "on",
    # Bind parameters are tenant data (names, emails, documents); the statement with its
    # placeholders already says what was done.
    "pgaudit.log_parameter": "off",
}
# Where the computes find an enterprise tenant's password: one file per tenant id.
LOGINS_VOLUME = "db-logins"
LOGINS_DIR = "/var/run/secrets/b2b-platform/db-logins"
LOGINS_MODE = 0o440  # owner root, group the pod's fsGroup: the app user reads, nobody else


@dataclass(frozen=True)
class TenantDatabase:
    """One tenant as the database sees it."""

    id: str
    role: str
    isolation: str
    own_login: bool  # enterprise: its own login role, pool and connection limit
    login_version: int = 0
    # Phase 1 of a plan switch (Tenant.previous_plan) keeps both ways in: the role logs in with its
    # password and the router may SET ROLE to it. The computes' logins file lists it only when the
    # tenant is heading to (or is) enterprise, so they pick the login the switch is heading to.
    via_router: bool = True
    login_file: bool = False

    @classmethod
    def of(cls, tenant: Tenant) -> TenantDatabase:
        return cls(
            tenant.id,
            tenant_role(tenant.id),
            tenant.isolation,
            tenant.own_login,
            tenant.login_version,
            via_router="business" in (tenant.plan, tenant.previous_plan),
            login_file=tenant.plan == "enterprise",
        )


@dataclass(frozen=True)
class BackupTarget:
    """Where the Barman Cloud plugin sends WAL and base backups."""

    destination: str  # s3://<bucket>/
    endpoint: str
    credentials_secret: str  # keys accessKeyId, secretAccessKey
    in_cluster: bool  # the blueprint's archive, in this cluster; else an external store
    ca_secret: str | None = None  # key ca.crt

    @classmethod
    def of(cls, settings: Settings, store: ObjectStoreRef | None) -> BackupTarget | None:
        external = settings.datastore.backup_store
        if external:
            return cls(
                f"s3://{external.bucket}/",
                external.endpoint,
                external.credentials_secret,
                False,
                external.ca_secret,
            )
        if store:
            return cls(f"s3://{store.backup_bucket}/", store.endpoint, store.credentials_secret, True)
        return None

    @property
    def port(self) -> int:
        parts = urlsplit(self.endpoint)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Recovery:
    """The earlier incarnation's backups a new Cluster is created from (datastore.recovery)."""

    server_name: str  # its backup directory, in this stack's backup store
    target_time: str | None  # RFC 3339; None: replay all the WAL archived

    @classmethod
    def of(cls, settings: Settings) -> Recovery | None:
        recovery = settings.datastore.recovery
        return cls(recovery.server_name, recovery.target_time) if recovery else None


@dataclass(frozen=True)
class DatastoreArgs:
    namespace: str
    ref: DatabaseRef
    instances: int
    multi_zone: bool
    size_gb: int
    storage_class: str | None
    image: str
    pooler_image: str
    resources: dict
    parameters: dict
    operator_namespace: str
    tenants: tuple[TenantDatabase, ...]
    removed: tuple[str, ...]  # offboarded, kept as tombstones until purged
    purged: tuple[str, ...]
    connections: ConnectionBudget
    synchronous: bool
    backup: BackupTarget | None
    backup_schedule: str
    backup_retention: str
    protect: bool
    purge: bool  # datastore.purge: a delete really deletes the Cluster (and CNPG its PVCs)
    migrations: tuple[Migration, ...]
    pgaudit_log: str | None  # the `pgaudit.log` classes; None: pgaudit off
    # The CNPG / barman-cloud / Prometheus operator releases when the stack installs add-ons.
    requires: tuple = ()
    # Where the API server's endpoints live (stack setting apiServerCidr); None: any address.
    api_server_cidr: str | None = None
    recovery: Recovery | None = None

    @classmethod
    def of(
        cls, resource: DatastoreResource, bp: Blueprint, settings: Settings, refs: Refs, requires: tuple = ()
    ) -> DatastoreArgs:
        ds = settings.datastore
        return cls(
            namespace=refs.namespace,
            ref=present(refs.database, "datastore"),
            instances=3 if resource.config.ha else 1,
            multi_zone=bp.multi_zone,
            size_gb=resource.config.tamanho_gb,
            storage_class=settings.storage_class,
            image=settings.image("postgres"),
            pooler_image=settings.image("pgbouncer"),
            resources=ds.resources(),
            parameters=dict(ds.parameters),
            operator_namespace=ds.operator_namespace,
            api_server_cidr=settings.api_server_cidr,
            tenants=tuple(TenantDatabase.of(t) for t in settings.tenants),
            removed=tuple(settings.removed_tenants),
            purged=tuple(settings.purge_tenants),
            connections=connection_budget(settings, resource.config.ha),
            synchronous=(resource.config.ha and bp.multi_zone) if ds.synchronous is None else ds.synchronous,
            backup=BackupTarget.of(settings, refs.object_store),
            backup_schedule=ds.backup_schedule,
            backup_retention=ds.backup_retention,
            protect=settings.protect,
            purge=ds.purge,
            migrations=migrations.load(),
            pgaudit_log=settings.audit.pgaudit_log if settings.audit.database else None,
            requires=tuple(requires),
            recovery=Recovery.of(settings),
        )

    @property
    def name(self) -> str:
        return self.ref.cluster

    @property
    def object_store_name(self) -> str:
        return f"{self.name}-backups"


def managed_roles(args: DatastoreArgs) -> list:
    """`spec.managed.roles`: the platform's roles, one per tenant, and the purged ones."""
    shared = [t.role for t in args.tenants if t.via_router]
    roles = [
        {
            "name": args.ref.router_role,
            "ensure": "present",
            "login": True,
            # NOINHERIT: membership lets it SET ROLE to a tenant, never read as one by default.
            "inherit": False,
            "passwordSecret": {"name": args.ref.router_secret},
            "inRoles": sorted(shared),
            "comment": "b2b-platform computes; SET LOCAL ROLE tenant_<id> per transaction",
        },
        {"name": RLS_GROUP, "ensure": "present", "login": False, "inherit": False},
        {
            "name": MIGRATOR_ROLE,
            "ensure": "present",
            "login": True,
            # CREATE ROLE ... SUPERUSER by the instance manager (cloudnative-pg v1.30.0
            # internal/management/controller/roles/postgres.go); see MIGRATOR_ROLE.
            "superuser": True,
            "passwordSecret": {"name": args.ref.migrator_secret},
            "comment": "b2b-platform migrations Job (sql/migrations); pg_hba admits its pods only",
        },
        {"name": LOGIN_GROUP, "ensure": "present", "login": False, "inherit": False},
    ]
    for t in args.tenants:
        role = {"name": t.role, "ensure": "present", "login": t.own_login}
        groups = ([RLS_GROUP] if t.isolation == "rls" else []) + ([LOGIN_GROUP] if t.own_login else [])
        if groups:
            role["inRoles"] = groups
        if t.own_login:
            role["connectionLimit"] = args.connections.per_login
            role["passwordSecret"] = {"name": args.ref.tenant_secret(t.id)}
        roles.append(role)
    roles += [tombstone_role(tid) for tid in args.removed]
    roles += [{"name": tenant_role(tid), "ensure": "absent"} for tid in args.purged]
    return roles


def tombstone_role(tenant_id: str) -> dict:
    """A removed tenant's role until its data is purged: CNPG leaves an unlisted role as it was
    (LOGIN, password, groups), so the role stays listed with every door shut. No `inRoles`:
    CNPG 1.30 revokes memberships not listed (internal/management/controller/roles/roles.go,
    isInSameRolesAs); `disablePassword` sets PASSWORD NULL (roles.go, ApplyPassword); an
    unchanged role the router is no longer a member of. tenancy.purge_tenant() checks this shape."""
    return {
        "name": tenant_role(tenant_id),
        "ensure": "present",
        "login": False,
        "inherit": False,
        "connectionLimit": 0,
        "disablePassword": True,
        "comment": "b2b-platform: removed tenant, kept until tenancy.purge_tenant()",
    }


def database_schemas(args: DatastoreArgs) -> list:
    """`spec.schemas` of the application Database: one per schema tenant, dropped only on purge."""
    # The database owner owns every tenant schema, so a tenant cannot grant its schema to others
    # (it gets USAGE and CREATE from the event trigger of sql/migrations); it still owns its tables.
    # Removed tenants keep their schema: only `purgeTenants` renders it absent.
    present = [
        {"name": t.role, "owner": args.ref.database, "ensure": "present"}
        for t in args.tenants
        if t.isolation == "schema"
    ]
    return present + [{"name": tenant_role(tid), "ensure": "absent"} for tid in args.purged]


def pg_hba(args: DatastoreArgs) -> list:
    """Enterprise login roles may log in only while their tenant is configured.

    CNPG leaves a role alone once it leaves `managed.roles`, so a removed enterprise tenant's
    role would keep LOGIN and its password; these rules (before CNPG's default
    `host all all all scram-sha-256`) turn that into a rejection without dropping anything.
    """
    allowed = [f"host {args.ref.database} {t.role} all scram-sha-256" for t in args.tenants if t.own_login]
    return [*migrator_hba(args), *allowed, f"host all +{LOGIN_GROUP} all reject"]


def migrator_hba(args: DatastoreArgs) -> list[str]:
    """The migrations login: the application database, TLS, from the Job's pods; nothing else.

    CloudNativePG 1.30 writes these after its fixed rules and before its default
    `host all all all scram-sha-256` (pkg/postgres/configuration.go hbaTemplateString), and
    expands `${podselector:NAME}` into one line per IP of the pods `podSelectorRefs` NAME
    selects in the Cluster's namespace, none while there are none (pkg/postgres/hba/hba.go
    ExpandLine): until the operator has seen the Job's pod, the reject below answers it, and
    the Job retries. The pooler's connections come from the pooler's pods and are rejected too.
    """
    return [
        f"hostssl {args.ref.database} {MIGRATOR_ROLE} ${{podselector:{MIGRATIONS_SELECTOR}}} scram-sha-256",
        f"host all {MIGRATOR_ROLE} all reject",
    ]


def pgaudit_parameters(args: DatastoreArgs) -> dict:
    """The `pgaudit.*` PostgreSQL parameters; none when pgaudit is off, so CNPG unloads it.

    Global, not per role: business tenants' statements run as the router login after
    `SET LOCAL ROLE`, and a role's `ALTER ROLE ... SET` defaults apply only to the role that
    logs in; CNPG's `managed.roles` cannot carry per-role settings either.
    """
    if args.pgaudit_log is None:
        return {}
    return {"pgaudit.log": args.pgaudit_log, **PGAUDIT_COMPANIONS}


def affinity(args: DatastoreArgs) -> dict:
    if args.multi_zone:
        return {"enablePodAntiAffinity": True, "topologyKey": meta.ZONE_KEY, "podAntiAffinityType": "required"}
    return {"enablePodAntiAffinity": True, "topologyKey": meta.HOST_KEY, "podAntiAffinityType": "preferred"}


def storage(args: DatastoreArgs) -> dict:
    spec = {"size": f"{args.size_gb}Gi", "resizeInUseVolumes": True}
    if args.storage_class:
        spec["storageClass"] = args.storage_class
    return spec


def restricted_container_context() -> dict:
    # CNPG's defaults already match; stating them keeps a future default change from loosening them.
    return meta.container_security_context() | {"seccompProfile": RESTRICTED_SECCOMP}


def postgres_parameters(args: DatastoreArgs) -> dict[str, str]:
    """The Cluster's `postgresql.parameters`: the stack's, the connection budget's, pgaudit's."""
    return dict(args.parameters) | args.connections.server_parameters() | pgaudit_parameters(args)


def cluster_spec(args: DatastoreArgs, backup_server: pulumi.Input[str] | None = None) -> dict:
    """`backup_server`: the archive's `serverName` for this incarnation of the cluster (see wal_archiver)."""
    spec = {
        "instances": args.instances,
        "imageName": args.image,
        "imagePullPolicy": meta.IMAGE_PULL_POLICY,
        "primaryUpdateStrategy": "unsupervised",
        # After the standbys are updated, promote one and update the old primary as a standby, instead
        # of restarting the primary in place (cloudnative-pg v1.30.0 api/v1/cluster_types.go, default
        # `restart`; internal/controller/cluster_upgrade.go updatePrimaryPod falls back to a restart
        # with one instance). Its webhook refuses an update that changes `imageName` and parameters
        # together (internal/webhook/v1/cluster_webhook.go validateConfigurationChange).
        "primaryUpdateMethod": "switchover",
        "enablePDB": True,
        "enableSuperuserAccess": False,
        "postgresql": {
            "parameters": postgres_parameters(args),
            "pg_hba": pg_hba(args),
            **({"synchronous": SYNCHRONOUS_QUORUM} if args.synchronous else {}),
        },
        "bootstrap": bootstrap(args),
        "podSelectorRefs": [{"name": MIGRATIONS_SELECTOR, "selector": {"matchLabels": args.ref.migrations_selector}}],
        "storage": storage(args),
        "resources": args.resources,
        "affinity": affinity(args),
        # No `podSecurityContext`: CNPG's default (uid/gid 26, runAsNonRoot, this seccomp
        # profile) is the only one with `fsGroup` 26, which makes PGDATA on a freshly formatted
        # block volume writable; a user-set context is used as given, without fsGroup
        # (cloudnative-pg v1.30.0 pkg/specs/pods.go GetPodSecurityContext).
        "seccompProfile": RESTRICTED_SECCOMP,
        "securityContext": restricted_container_context(),
        "managed": {"roles": managed_roles(args)},
    }
    if args.backup:
        spec["plugins"] = [wal_archiver(args, backup_server)]
    if args.recovery:
        spec["externalClusters"] = [recovery_source(args)]
    return spec


def bootstrap(args: DatastoreArgs) -> dict:
    """`spec.bootstrap`: a new, empty database, or (datastore.recovery) one restored from backups.

    CNPG reads it only to create the first instance of a Cluster that has none (cloudnative-pg
    v1.30.0 internal/controller/cluster_controller.go → cluster_create.go createPrimaryInstance,
    which refuses once the Cluster was initialized); docs/src/recovery.md: recovery "is not
    performed in-place on an existing cluster". Changing it later changes nothing in the database.
    """
    if args.recovery is None:
        return {
            "initdb": {
                "database": args.ref.database,
                "owner": args.ref.database,
                "dataChecksums": True,
                # No post-init SQL: the migrations Job applies the platform SQL to a new database as
                # to an old one, and the Database (its schemas) waits for it. Dropping the reference
                # from an existing Cluster is allowed: CNPG 1.30's update checks leave `bootstrap`
                # alone (internal/webhook/v1/cluster_webhook.go validateClusterChanges).
            }
        }
    recovery: dict = {
        "source": RECOVERY_SOURCE,
        # The restored database keeps its name and owner; CNPG creates either only if the backup
        # lacks it, after recovery (api/v1/cluster_funcs.go ShouldRecoveryCreateApplicationDatabase,
        # docs/src/recovery.md "Configure the application database").
        "database": args.ref.database,
        "owner": args.ref.database,
    }
    if args.recovery.target_time:
        # Without `backupID` CNPG picks the last backup completed before the target (recovery.md, PITR).
        recovery["recoveryTarget"] = {"targetTime": args.recovery.target_time}
    return {"recovery": recovery}


def recovery_source(args: DatastoreArgs) -> dict:
    """The `externalClusters` entry the recovery reads: the layer's own ObjectStore, the earlier serverName.

    plugin-barman-cloud v0.14.0 web/docs/usage.md ("Restoring a Cluster") and parameters.md:
    `barmanObjectName` and `serverName` as plugin parameters; without `serverName` it would read the
    new Cluster's own name (internal/cnpgi/operator/config/config.go NewFromCluster), which is
    never an incarnation's directory (wal_archiver).
    """
    if args.backup is None or args.recovery is None:
        raise ValueError("a recovery needs the backup store its backups are in")
    return {
        "name": RECOVERY_SOURCE,
        "plugin": {
            "name": BARMAN_PLUGIN,
            "parameters": {"barmanObjectName": args.object_store_name, "serverName": args.recovery.server_name},
        },
    }


def pooler_reset_parameters() -> dict:
    """PgBouncer resets every server connection when a transaction gives it back, not only in
    session mode: a session-level SET (search_path, role), a WITH HOLD cursor, a prepared
    statement, LISTEN or an advisory lock left by one tenant's transaction would otherwise meet
    the next tenant's. CloudNativePG 1.30 accepts both (internal/webhook/v1/pooler_webhook.go,
    AllowedPgbouncerGenericConfigurationParameters); DISCARD ALL costs one round trip per
    transaction between pooler and server. PgBouncer 1.25 sees its `DISCARD ALL` command tag
    and forgets the statements it prepared on that connection (src/server.c), so protocol-level
    prepared statements are prepared again rather than broken."""
    return {"server_reset_query": "DISCARD ALL", "server_reset_query_always": "1"}


def wal_archiver(args: DatastoreArgs, backup_server: pulumi.Input[str] | None) -> dict:
    """The Barman Cloud plugin as WAL archiver, writing under `<bucket>/<backup_server>/`.

    plugin-barman-cloud v0.14.0: `serverName` defaults to the Cluster's name
    (internal/cnpgi/operator/config/config.go NewFromCluster), and the first WAL archived
    after initdb is refused unless that server's directory is empty
    (internal/cnpgi/common/wal.go Archive, CheckBackupDestination). The archive outlives the
    Cluster (retained bucket), so a cluster created again under the same name would never
    archive, nor back up, and its WAL would fill the volume. Each incarnation therefore gets
    its own `<cluster>-<random>` directory: the random suffix is created and deleted with the
    Cluster in the Pulumi state, and the old incarnations' backups stay where they are.
    """
    if backup_server is None:
        raise ValueError("a Cluster that archives WAL needs its incarnation's serverName")
    return {
        "name": BARMAN_PLUGIN,
        "enabled": True,
        "isWALArchiver": True,
        "parameters": {"barmanObjectName": args.object_store_name, "serverName": backup_server},
    }


def pooler_spec(args: DatastoreArgs) -> dict:
    return {
        "cluster": {"name": args.name},
        "instances": args.connections.poolers,
        "type": "rw",
        "pgbouncer": {
            # Transaction pooling is why tenant context must be per transaction (SET LOCAL).
            "poolMode": "transaction",
            "image": args.pooler_image,
            "parameters": args.connections.pooler_parameters() | pooler_reset_parameters(),
        },
        "template": {
            "spec": {
                # CNPG 1.30 overwrites both with its own (pkg/specs/pgbouncer/deployments.go:
                # uid 998, fsGroup 996, the Cluster's seccomp profile and container context);
                # they are stated here too so the template is restricted on its own.
                "securityContext": {"runAsNonRoot": True, "seccompProfile": RESTRICTED_SECCOMP},
                "topologySpreadConstraints": meta.spread_constraints(args.ref.pooler_selector, args.multi_zone),
                "containers": [
                    {
                        "name": "pgbouncer",
                        "resources": meta.resources("100m", "64Mi", "500m", "256Mi"),
                        "securityContext": restricted_container_context(),
                    }
                ],
            },
        },
    }


def database_spec(args: DatastoreArgs) -> dict:
    return {
        "name": args.ref.database,
        "owner": args.ref.database,
        "cluster": {"name": args.name},
        "ensure": "present",
        # Deleting this object never drops the database.
        "databaseReclaimPolicy": "retain",
        "schemas": database_schemas(args),
    }


def object_store_spec(args: DatastoreArgs, target: BackupTarget) -> dict:
    configuration: dict = {
        "destinationPath": target.destination,
        "endpointURL": target.endpoint,
        "s3Credentials": {
            "accessKeyId": {"name": target.credentials_secret, "key": "accessKeyId"},
            "secretAccessKey": {"name": target.credentials_secret, "key": "secretAccessKey"},
        },
    }
    if target.ca_secret:
        configuration["endpointCA"] = {"name": target.ca_secret, "key": "ca.crt"}
    return {
        "retentionPolicy": args.backup_retention,
        "configuration": configuration
        | {"wal": {"compression": "zstd", "maxParallel": 2}, "data": {"compression": "gzip", "jobs": 2}},
        "instanceSidecarConfiguration": {"resources": meta.resources("50m", "64Mi", "500m", "256Mi")},
    }


def scheduled_backup_spec(args: DatastoreArgs) -> dict:
    return {
        "cluster": {"name": args.name},
        "schedule": args.backup_schedule,
        "method": "plugin",
        "pluginConfiguration": {"name": BARMAN_PLUGIN},
        "backupOwnerReference": "self",
        "immediate": True,
        "target": "prefer-standby",
    }


def pod_monitor_spec(selector: dict) -> dict:
    return {"selector": {"matchLabels": dict(selector)}, "podMetricsEndpoints": [{"port": "metrics"}]}


def join_job_selector(cluster: str) -> dict:
    """The Jobs that clone a new replica from the primary (pg_basebackup).

    CNPG v1.30.0 pkg/specs/jobs.go (CreatePrimaryJob) labels Job pods with cnpg.io/cluster and
    cnpg.io/jobRole ("join" for a new replica) but never cnpg.io/podRole, so the instances'
    ingress must name them apart from the instance pods.
    """
    return {"cnpg.io/cluster": cluster, "cnpg.io/jobRole": "join"}


# The CNPG operator's pods, not the rest of its namespace (the barman-cloud plugin lives there too):
# cloudnative-pg/charts cloudnative-pg-v0.29.0 charts/cloudnative-pg/templates/_helpers.tpl selectorLabels.
OPERATOR_POD = {"app.kubernetes.io/name": "cloudnative-pg"}


def policy_specs(args: DatastoreArgs) -> dict[str, dict]:
    """NetworkPolicies by role. Egress inside the fabric is already open (Fabric)."""
    computes = meta.pod_peer({meta.LAYER_LABEL: "compute"})
    operator = meta.namespace_peer(args.operator_namespace, OPERATOR_POD)
    instances = args.ref.instance_selector
    # The operator never dials PgBouncer: only the pooler pod's own instance manager does, locally
    # (CNPG v1.30.0 internal/pgbouncer/management/controller/instance.go).
    pooler = meta.allow_ingress(args.ref.pooler_selector, [computes], meta.tcp_ports(POSTGRES_PORT))
    instance_ingress = meta.allow_ingress(
        instances,
        [
            meta.pod_peer(args.ref.pooler_selector),
            meta.pod_peer(join_job_selector(args.ref.cluster)),
            meta.pod_peer(args.ref.migrations_selector),
        ],
        meta.tcp_ports(POSTGRES_PORT),
    )
    instance_ingress["ingress"] += [
        # Streaming replication and the instance managers' status checks on each other.
        {"from": [meta.pod_peer(instances)], "ports": meta.tcp_ports(POSTGRES_PORT, STATUS_PORT)},
        {"from": [operator], "ports": meta.tcp_ports(POSTGRES_PORT, STATUS_PORT)},
    ]
    specs = {
        "pooler-ingress": pooler,
        "instances-ingress": instance_ingress,
        # The CNPG instance manager (in every instance, Job and pooler pod) watches its Cluster,
        # Pooler and Secrets through the Kubernetes API, which lives outside the fabric.
        "kube-api-egress": meta.api_server_egress(args.ref.selector, args.api_server_cidr),
    }
    if args.backup and not args.backup.in_cluster:
        # An external backup store is named by a URL, and a NetworkPolicy cannot name a host: its
        # port at any address, from the instances only (docs/network.md).
        specs["backup-egress"] = {
            "podSelector": {"matchLabels": instances},
            "policyTypes": ["Egress"],
            "egress": [{"ports": meta.tcp_ports(args.backup.port)}],
        }
    return specs


def content_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


def migrations_config_name(args: DatastoreArgs) -> str:
    """Named by its content: a new migration set is a new, immutable ConfigMap beside the old."""
    return f"{args.ref.migrations}-{content_hash(migrations.files(args.migrations))}"


# Waits until the primary answers this login (a new cluster's role, the Job pod's pg_hba line),
# then applies; the Job's deadline bounds the wait.
MIGRATE_COMMAND = (
    "until psql -X -q -t -c 'SELECT 1' >/dev/null; do echo 'waiting for the primary'; sleep 5; done; "
    f"exec psql {' '.join(migrations.PSQL_OPTIONS)} -f {MIGRATIONS_MOUNT}/{migrations.RUNNER}"
)


def migrations_pod_spec(args: DatastoreArgs) -> dict:
    """The migrations Job's pod: psql of the cluster's own PostgreSQL image against the primary.

    The `-rw` Service, not the pooler: the runner holds a session advisory lock and `SET ROLE`
    across transactions, which transaction pooling (and the pooler's DISCARD ALL) would break.
    No service account token: it talks to PostgreSQL only.
    """
    env = [
        {"name": "PGHOST", "value": meta.service_host(args.ref.rw_service, args.namespace, args.ref.domain)},
        {"name": "PGPORT", "value": str(args.ref.port)},
        {"name": "PGDATABASE", "value": args.ref.database},
        {"name": "PGSSLMODE", "value": "require"},
        {"name": "PGCONNECT_TIMEOUT", "value": "10"},
        {"name": "PGAPPNAME", "value": args.ref.migrations},
        meta.secret_env("PGUSER", args.ref.migrator_secret, "username"),
        meta.secret_env("PGPASSWORD", args.ref.migrator_secret, "password"),
    ]
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        # A client only: not the image's `postgres` uid, which owns the data files on instances.
        "securityContext": meta.pod_security_context(),
        "containers": [
            {
                "name": "migrate",
                "image": args.image,
                "imagePullPolicy": meta.IMAGE_PULL_POLICY,
                "command": ["sh", "-c", MIGRATE_COMMAND],
                "env": env,
                "volumeMounts": [{"name": "migrations", "mountPath": MIGRATIONS_MOUNT, "readOnly": True}],
                "resources": meta.resources("50m", "64Mi", "500m", "256Mi"),
                "securityContext": restricted_container_context(),
            }
        ],
        "volumes": [{"name": "migrations", "configMap": {"name": migrations_config_name(args), "defaultMode": 0o444}}],
    }


def migrations_job(args: DatastoreArgs) -> tuple[str, dict]:
    """(name, spec) of the Job applying sql/migrations.

    Named by its pod template (which names the ConfigMap by the migration set), so a new set or
    image is a new Job, which `pulumi up` creates and awaits before deleting the old one: the
    provider replaces delete-first only a replacement that keeps its name (pulumi-kubernetes
    v4.32.0 provider/pkg/provider/provider.go Diff, deleteBeforeReplace). An unchanged one is left
    alone, so applied migrations run again only when something changed, and then are skipped by
    the runner. No `ttlSecondsAfterFinished`: a Job Kubernetes deleted would be created again by the
    next refresh and `up`.
    """
    template = {"metadata": {"labels": meta.labels(args.ref.migrations, LAYER)}, "spec": migrations_pod_spec(args)}
    spec = {
        "backoffLimit": 2,
        "activeDeadlineSeconds": MIGRATIONS_DEADLINE,
        "template": template,
    }
    return f"{args.ref.migrations}-{content_hash(template)}", spec


def compute_env(args: DatastoreArgs) -> tuple:
    """Connection settings for the computes: host and names plain, credentials from Secrets."""
    return (
        {"name": "PGHOST", "value": meta.service_host(args.ref.pooler_service, args.namespace, args.ref.domain)},
        {"name": "PGPORT", "value": str(args.ref.port)},
        {"name": "PGDATABASE", "value": args.ref.database},
        {"name": "PGSSLMODE", "value": "require"},
        meta.secret_env("PGUSER", args.ref.router_secret, "username"),
        meta.secret_env("PGPASSWORD", args.ref.router_secret, "password"),
    )


def tenant_password(master: str, tenant_id: str, version: int) -> str:
    """An enterprise tenant's login password: HMAC-SHA256(master, "tenant-login:<id>:<version>"), hex.

    256 bits in [0-9a-f], safe in a libpq connection string and a basic-auth Secret; one
    tenant's password changes by raising its `loginVersion`, every one by replacing the master.
    """
    return hmac.new(master.encode(), f"tenant-login:{tenant_id}:{version}".encode(), hashlib.sha256).hexdigest()


def compute_volumes(args: DatastoreArgs) -> tuple:
    """The enterprise logins as files, so their number never changes a compute's pod spec.

    A mounted Secret (no subPath) is refreshed in place by the kubelet: a new tenant's file
    appears in running pods without a rollout.
    """
    return (
        {"name": LOGINS_VOLUME, "secret": {"secretName": args.ref.tenant_logins_secret, "defaultMode": LOGINS_MODE}},
    )


def compute_volume_mounts(args: DatastoreArgs) -> tuple:
    return ({"name": LOGINS_VOLUME, "mountPath": LOGINS_DIR, "readOnly": True},)


class Datastore(pulumi.ComponentResource):
    cluster_name: pulumi.Output[str]
    # Where this cluster's WAL and base backups go in the backup bucket (None without an archive).
    backup_server: pulumi.Output[str] | None
    pooler_service: str
    env: tuple[dict, ...]
    volumes: tuple[dict, ...]
    volume_mounts: tuple[dict, ...]
    tenant_logins: pulumi.Output[str]

    def __init__(self, name: str, args: DatastoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("b2b-platform:datastore:Datastore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        custom = k8s.apiextensions.CustomResource

        def after(*deps, stateful: bool = False) -> pulumi.ResourceOptions:
            # Stateful objects: a protected stack refuses to delete them, and whatever `protect` says,
            # a delete only forgets them (the data stays in the cluster) unless the layer is purged.
            return pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.requires, *deps],
                protect=args.protect if stateful else None,
                retain_on_delete=not args.purge if stateful else None,
            )

        def md(object_name: str, extra: dict | None = None) -> dict:
            return meta.metadata(object_name, args.namespace, LAYER, extra)

        router = self._login_secret(
            f"{name}-router",
            args.ref.router_secret,
            args.ref.router_role,
            self._password(f"{name}-router-password"),
            args,
        )
        enterprise = [t for t in args.tenants if t.own_login]
        # One master for every enterprise login (docs/layers/datastore.md): a tenant adds its Secret only.
        master = self._password(f"{name}-tenant-logins-master") if enterprise else None
        passwords = (
            {t.id: master.apply(partial(tenant_password, tenant_id=t.id, version=t.login_version)) for t in enterprise}
            if master
            else {}
        )
        mounted = {t.id: passwords[t.id] for t in enterprise if t.login_file}
        for t in enterprise:
            self._login_secret(
                f"{name}-tenant-{t.id}",
                args.ref.tenant_secret(t.id),
                t.role,
                pulumi.Output.secret(passwords[t.id]),
                args,
            )
        # Always present (empty without enterprise tenants): the computes mount it unconditionally.
        logins = kube.Object(
            f"{name}-tenant-logins",
            "v1",
            "Secret",
            metadata=md(args.ref.tenant_logins_secret),
            type="Opaque",
            stringData=pulumi.Output.secret(pulumi.Output.all(**mounted)) if mounted else {},
            opts=child,
        )
        migrator = self._login_secret(
            f"{name}-migrator",
            args.ref.migrator_secret,
            MIGRATOR_ROLE,
            self._password(f"{name}-migrator-password"),
            args,
        )
        self.backup_server = None
        if args.backup:
            # Protected like the Cluster: replacing it under a living cluster would only move
            # archiving to a new, empty directory, but nothing should do that by accident.
            incarnation = random.RandomString(
                f"{name}-backup-incarnation",
                length=8,
                special=False,
                upper=False,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            self.backup_server = incarnation.result.apply(lambda suffix: f"{args.name}-{suffix}")
        store = (
            custom(
                f"{name}-objectstore",
                api_version=BARMAN,
                kind="ObjectStore",
                metadata=md(args.object_store_name),
                spec=object_store_spec(args, args.backup),
                opts=after(stateful=True),
            )
            if args.backup
            else None
        )
        # A restore reads the ObjectStore from the first instance's restore Job (plugin-barman-cloud
        # v0.14.0 internal/cnpgi/restore/restore.go Restore: a Get, an error if it is missing).
        cluster = custom(
            f"{name}-cluster",
            api_version=CNPG,
            kind="Cluster",
            metadata=md(args.name),
            spec=cluster_spec(args, self.backup_server),
            opts=after(router, migrator, *([store] if store and args.recovery else []), stateful=True),
        )
        if store:
            custom(
                f"{name}-scheduledbackup",
                api_version=CNPG,
                kind="ScheduledBackup",
                metadata=md(f"{args.name}-scheduled"),
                spec=scheduled_backup_spec(args),
                opts=after(cluster, store),
            )
        custom(
            f"{name}-pooler",
            api_version=CNPG,
            kind="Pooler",
            metadata=md(args.ref.pooler_service),
            spec=pooler_spec(args),
            opts=after(cluster),
        )
        # CNPG's own PDBs select instances only (cloudnative-pg v1.30.0 pkg/specs/poddisruptionbudget.go:
        # cnpg.io/cluster + cnpg.io/instanceRole); nothing else keeps a drain from taking both poolers.
        kube.Object(
            f"{name}-pooler-pdb",
            "policy/v1",
            "PodDisruptionBudget",
            metadata=md(args.ref.pooler_service),
            spec=meta.pdb_spec(args.ref.pooler_selector),
            opts=child,
        )
        config = kube.Object(
            f"{name}-migrations-sql",
            "v1",
            "ConfigMap",
            metadata=md(migrations_config_name(args)),
            immutable=True,
            data=migrations.files(args.migrations),
            opts=child,
        )
        job_name, job_spec = migrations_job(args)
        job = kube.Object(
            f"{name}-migrations",
            "batch/v1",
            "Job",
            # A Job that failed (say, the database was down) runs again on the next `pulumi up`
            # (pulumi-kubernetes v4.32.0 provider/pkg/provider/provider.go Diff, replaceUnready).
            metadata=meta.metadata(job_name, args.namespace, LAYER, annotations={"pulumi.com/replaceUnready": "true"}),
            spec=job_spec,
            # pulumi-kubernetes awaits a Job's Complete condition and fails on Failed
            # (provider/pkg/await/job.go), 10 minutes unless told: the Job's own deadline here.
            opts=pulumi.ResourceOptions.merge(
                after(cluster, config),
                pulumi.ResourceOptions(
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=f"{MIGRATIONS_DEADLINE}s", update=f"{MIGRATIONS_DEADLINE}s"
                    )
                ),
            ),
        )
        custom(
            f"{name}-database",
            api_version=CNPG,
            kind="Database",
            metadata=md(f"{args.name}-{args.ref.database}"),
            spec=database_spec(args),
            # Tenant schemas get their grants from the migrations' event trigger: it comes first.
            opts=after(cluster, job, stateful=True),
        )
        custom(
            f"{name}-podmonitor",
            api_version=MONITORING,
            kind="PodMonitor",
            metadata=md(args.name),
            spec=pod_monitor_spec(args.ref.instance_selector),
            opts=after(),
        )
        custom(
            f"{name}-pooler-podmonitor",
            api_version=MONITORING,
            kind="PodMonitor",
            metadata=md(args.ref.pooler_service),
            spec=pod_monitor_spec(args.ref.pooler_selector),
            opts=after(),
        )
        for role, spec in policy_specs(args).items():
            kube.Object(
                f"{name}-{role}",
                "networking.k8s.io/v1",
                "NetworkPolicy",
                metadata=md(f"{args.name}-{role}"),
                spec=spec,
                opts=child,
            )

        self.cluster_name = kube.name_of(cluster)
        self.pooler_service = args.ref.pooler_service
        self.env = compute_env(args)
        self.volumes = compute_volumes(args)
        self.volume_mounts = compute_volume_mounts(args)
        self.tenant_logins = logins.metadata["name"]
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "pooler_service": self.pooler_service,
                "tenant_logins": self.tenant_logins,
                "backup_server": self.backup_server,
            }
        )

    def _password(self, pulumi_name: str) -> pulumi.Output[str]:
        return random.RandomPassword(
            pulumi_name, length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        ).result

    def _login_secret(
        self, pulumi_name: str, secret_name: str, role: str, password: pulumi.Output[str], args: DatastoreArgs
    ) -> kube.Object:
        """The basic-auth Secret CNPG's `passwordSecret` requires."""
        return kube.Object(
            pulumi_name,
            "v1",
            "Secret",
            # cnpg.io/reload: CNPG re-reads the password when the Secret changes.
            metadata=meta.metadata(secret_name, args.namespace, LAYER, {"cnpg.io/reload": "true"}),
            type="kubernetes.io/basic-auth",
            stringData={"username": role, "password": password},
            opts=pulumi.ResourceOptions(parent=self),
        )
