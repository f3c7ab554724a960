"""Datastore under Pulumi mocks: what is registered per blueprint variant and tenant config."""

import dataclasses
import hashlib
import hmac
import json
from collections import Counter

import pulumi
import pytest
from conftest import ROOT, Rendered, dev_config, resource, revealed, seed, variant
from schema_check import validate

from components import meta
from components.blueprint import parse_blueprint
from components.connections import RESERVED
from components.contracts import MAX_DATABASE_TENANTS, TENANT_ID_MAX_FOR_DATABASE, Refs, tenant_role
from components.datastore import (
    LOGINS_DIR,
    LOGINS_VOLUME,
    DatastoreArgs,
    cluster_spec,
    compute_env,
    database_spec,
    migrations_config_name,
    migrations_job,
    pooler_spec,
    tenant_password,
)
from components.migrations import Migration
from components.platform import Platform, PlatformArgs
from components.podsecurity import restricted_violations
from components.problems import InvalidInput
from components.render import SECRET_SIG, run_program, stand_in
from components.settings import cross_check_settings, load_inputs, parse_settings

DEV_TENANTS = dev_config()["tenants"]
MIGRATOR_HBA = [
    "hostssl app platform_migrator ${podselector:migrations} scram-sha-256",
    "host all platform_migrator all reject",
]


def args_for(config: dict | None = None, edit=None) -> DatastoreArgs:
    raw = seed()
    if edit:
        edit(raw)
    bp = parse_blueprint(raw)
    settings = parse_settings({"tenants": DEV_TENANTS, **(config or {})})
    assert cross_check_settings(settings, bp) == []
    return DatastoreArgs.of(bp.one("datastore"), bp, settings, Refs.of(bp))


def roles_by_name(rendered) -> dict:
    return {r["name"]: r for r in rendered.get("Cluster", "platform-db")["spec"]["managed"]["roles"]}


def schemas_by_name(rendered) -> dict:
    return {s["name"]: s for s in rendered.get("Database", "platform-db-app")["spec"]["schemas"]}


def without(tenant_id: str) -> list:
    return [t for t in DEV_TENANTS if t["id"] != tenant_id]


def test_seed_cluster_is_ha_across_zones(seed_render):
    spec = seed_render.get("Cluster", "platform-db")["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"] == {
        "enablePodAntiAffinity": True,
        "topologyKey": meta.ZONE_KEY,
        "podAntiAffinityType": "required",
    }
    assert spec["storage"] == {"size": "100Gi", "storageClass": "standard", "resizeInUseVolumes": True}
    assert spec["imageName"] == "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie"
    assert spec["bootstrap"]["initdb"]["database"] == "app" and spec["bootstrap"]["initdb"]["owner"] == "app"
    assert spec["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}


def test_zona_unica_and_no_ha(render, tmp_path):
    def edit(bp):
        bp["resiliencia"] = "zona-unica"
        resource(bp, "platform-db")["config"].update(ha=False, tamanho_gb=20)

    rendered = render(blueprint=variant(tmp_path, edit))
    spec = rendered.get("Cluster", "platform-db")["spec"]
    assert spec["instances"] == 1 and spec["storage"]["size"] == "20Gi"
    assert spec["affinity"]["topologyKey"] == meta.HOST_KEY and spec["affinity"]["podAntiAffinityType"] == "preferred"
    pooler = rendered.get("Pooler", "platform-db-pooler-rw")["spec"]
    assert pooler["instances"] == 1
    assert meta.ZONE_KEY not in json.dumps(pooler)


def test_ha_under_zona_unica_spreads_over_nodes_only(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp.update(resiliencia="zona-unica")))
    spec = rendered.get("Cluster", "platform-db")["spec"]
    assert spec["instances"] == 3 and spec["affinity"]["topologyKey"] == meta.HOST_KEY


def test_storage_class_only_when_configured():
    assert "storageClass" not in cluster_spec(args_for({"storageClass": None}), "platform-db-x")["storage"]


def test_pooler_is_transaction_mode_rw_and_pinned(seed_render):
    pooler = seed_render.get("Pooler", "platform-db-pooler-rw")
    spec = pooler["spec"]
    assert spec["type"] == "rw" and spec["cluster"] == {"name": "platform-db"} and spec["instances"] == 2
    assert spec["pgbouncer"]["poolMode"] == "transaction"
    assert spec["pgbouncer"]["image"] == "ghcr.io/cloudnative-pg/pgbouncer:1.25.1"
    assert spec["template"]["spec"]["topologySpreadConstraints"][0]["topologyKey"] == meta.ZONE_KEY


def effective_instance_pod_context(cluster: dict) -> dict:
    """The pod securityContext CNPG 1.30 gives instance and initdb/join Job pods.

    cloudnative-pg v1.30.0 pkg/specs/pods.go GetPodSecurityContext (used by pods.go and
    jobs.go): without `spec.podSecurityContext`, uid/gid 26 (api/v1/cluster_types.go
    DefaultPostgresUID/GID), runAsNonRoot, `spec.seccompProfile` and fsGroup 26; with it, that
    context as given, only runAsUser, runAsGroup and seccompProfile filled in — never fsGroup
    (pods_test.go: "FSGroup ... BeNil" when the user sets the field).
    """
    seccomp = cluster.get("seccompProfile", {"type": "RuntimeDefault"})
    if "podSecurityContext" not in cluster:
        return {"runAsUser": 26, "runAsGroup": 26, "runAsNonRoot": True, "fsGroup": 26, "seccompProfile": seccomp}
    return {"runAsUser": 26, "runAsGroup": 26, "seccompProfile": seccomp} | cluster["podSecurityContext"]


def test_pgdata_is_writable_on_block_storage(seed_render):
    """A fresh ext4/xfs volume (EBS, PD, Ceph RBD) has a root-owned root directory; only fsGroup
    makes the kubelet hand it to the postgres group, or initdb (uid 26) cannot create PGDATA."""
    context = effective_instance_pod_context(seed_render.get("Cluster", "platform-db")["spec"])
    assert context["fsGroup"] == context["runAsGroup"] == 26 and context["runAsNonRoot"] is True


def test_instance_and_pooler_pods_are_restricted(seed_render):
    cluster = seed_render.get("Cluster", "platform-db")["spec"]
    assert cluster["seccompProfile"] == {"type": "RuntimeDefault"}
    template = seed_render.get("Pooler", "platform-db-pooler-rw")["spec"]["template"]["spec"]
    assert restricted_violations(template) == []
    # What CNPG 1.30 builds: instance pods from the Cluster's contexts (pkg/specs/pods.go,
    # containers.go); pooler pods with the Cluster's seccomp and container context
    # overwriting the template's (pkg/specs/pgbouncer/deployments.go), uid 998.
    pod_context = effective_instance_pod_context(cluster)
    instance = {
        "securityContext": pod_context,
        "initContainers": [{"name": "bootstrap-controller", "securityContext": cluster["securityContext"]}],
        "containers": [{"name": "postgres", "securityContext": cluster["securityContext"]}],
    }
    pooler = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 998, "seccompProfile": cluster["seccompProfile"]},
        "containers": [{"name": "pgbouncer", "securityContext": cluster["securityContext"]}],
    }
    assert restricted_violations(instance) == [] and restricted_violations(pooler) == []


def test_backups_go_to_the_archive_through_the_plugin(seed_render):
    store = seed_render.get("ObjectStore", "platform-db-backups")
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1"
    conf = store["spec"]["configuration"]
    assert conf["destinationPath"] == "s3://tenant-files-backups/"
    assert conf["endpointURL"] == "http://tenant-files.saas-net.svc.cluster.local:8333"
    assert conf["s3Credentials"] == {
        "accessKeyId": {"name": "tenant-files-s3", "key": "accessKeyId"},
        "secretAccessKey": {"name": "tenant-files-s3", "key": "secretAccessKey"},
    }
    assert store["spec"]["retentionPolicy"] == "30d"
    plugins = seed_render.get("Cluster", "platform-db")["spec"]["plugins"]
    assert plugins == [
        {
            "name": "barman-cloud.cloudnative-pg.io",
            "enabled": True,
            "isWALArchiver": True,
            "parameters": {
                "barmanObjectName": "platform-db-backups",
                "serverName": "platform-db-" + stand_in("platform-db-backup-incarnation", 8),
            },
        }
    ]
    backup = seed_render.get("ScheduledBackup", "platform-db-scheduled")["spec"]
    assert backup["method"] == "plugin" and backup["pluginConfiguration"] == {"name": "barman-cloud.cloudnative-pg.io"}
    assert backup["schedule"] == "0 0 3 * * *" and backup["cluster"] == {"name": "platform-db"}
    # The archive and its Secret belong to the Archive layer, which creates them under these names.
    assert (
        seed_render.get("Secret", "tenant-files-s3")["metadata"]["labels"]["app.kubernetes.io/component"] == "archive"
    )


def test_no_archive_no_backups(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp["recursos"].remove(resource(bp, "tenant-files"))))
    assert rendered.kind("ObjectStore") == [] and rendered.kind("ScheduledBackup") == []
    assert "plugins" not in rendered.get("Cluster", "platform-db")["spec"]


def test_no_deprecated_in_tree_features(seed_render):
    text = json.dumps(seed_render.objects)
    assert "barmanObjectStore" not in text and "enablePodMonitor" not in text


def test_pod_monitors_select_instances_and_pooler(seed_render):
    instances = seed_render.get("PodMonitor", "platform-db")["spec"]
    assert instances["selector"] == {"matchLabels": {"cnpg.io/cluster": "platform-db", "cnpg.io/podRole": "instance"}}
    assert instances["podMetricsEndpoints"] == [{"port": "metrics"}]
    pooler = seed_render.get("PodMonitor", "platform-db-pooler-rw")["spec"]
    assert pooler["selector"] == {"matchLabels": {"cnpg.io/poolerName": "platform-db-pooler-rw"}}


def test_only_computes_reach_the_pooler(seed_render):
    spec = seed_render.get("NetworkPolicy", "platform-db-pooler-ingress")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"cnpg.io/poolerName": "platform-db-pooler-rw"}}
    # The operator never dials PgBouncer (CNPG v1.30.0 internal/pgbouncer/management/controller/instance.go
    # runs inside the pooler pod).
    assert spec["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {meta.LAYER_LABEL: "compute"}}}],
            "ports": [{"protocol": "TCP", "port": 5432}],
        }
    ]
    # Computes carry that label; nothing else the platform builds does.
    labelled = {
        o["metadata"]["name"]
        for o in seed_render.kind("Deployment")
        if o["spec"]["template"]["metadata"]["labels"].get(meta.LAYER_LABEL) == "compute"
    }
    assert labelled == {"tenant-api", "admin-ui"}


def test_instances_admit_pooler_peers_and_operator_only(seed_render):
    spec = seed_render.get("NetworkPolicy", "platform-db-instances-ingress")["spec"]
    sources = {
        json.dumps(rule["from"], sort_keys=True): sorted(p["port"] for p in rule["ports"]) for rule in spec["ingress"]
    }
    assert sources == {
        # CNPG v1.30.0 pkg/specs/jobs.go: the join Job's pod has cnpg.io/jobRole, never cnpg.io/podRole.
        json.dumps(
            [
                {"podSelector": {"matchLabels": {"cnpg.io/poolerName": "platform-db-pooler-rw"}}},
                {"podSelector": {"matchLabels": {"cnpg.io/cluster": "platform-db", "cnpg.io/jobRole": "join"}}},
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "platform-db-migrations",
                            "app.kubernetes.io/part-of": "b2b-platform",
                        }
                    }
                },
            ],
            sort_keys=True,
        ): [5432],
        json.dumps(
            [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "platform-db", "cnpg.io/podRole": "instance"}}}],
            sort_keys=True,
        ): [5432, 8000],
        # The operator's pods only (chart cloudnative-pg-v0.29.0 selectorLabels), not the plugin beside it.
        json.dumps(
            [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cnpg-system"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "cloudnative-pg"}},
                }
            ],
            sort_keys=True,
        ): [5432, 8000],
    }


def test_instance_managers_may_reach_the_kubernetes_api_only(seed_render):
    spec = seed_render.get("NetworkPolicy", "platform-db-kube-api-egress")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"cnpg.io/cluster": "platform-db"}}
    api_ports = [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert spec["egress"] == [{"to": [{"ipBlock": {"cidr": "172.18.0.0/16"}}], "ports": api_ports}]


def test_without_api_server_cidr_the_api_ports_stay_open_with_one_warning(render):
    with pytest.raises(InvalidInput) as info:
        parse_settings({"apiServerCidr": "172.18.0.1/16"})
    assert info.value.problems[0].path == "apiServerCidr" and "CIDR form" in info.value.problems[0].message
    rendered = Rendered(run_program({k: v for k, v in dev_config().items() if k != "apiServerCidr"}))
    for name in ("platform-db-kube-api-egress", "tenant-obs-prometheus-apiserver"):
        assert "to" not in rendered.get("NetworkPolicy", name)["spec"]["egress"][0]
    assert sum("apiServerCidr is not set" in w for w in rendered.run.warnings) == 1
    assert not any("apiServerCidr" in w for w in render().run.warnings)


def test_operator_namespace_from_settings(render):
    rendered = render({"datastore": {"operatorNamespace": "postgres-operator"}})
    text = json.dumps(rendered.get("NetworkPolicy", "platform-db-instances-ingress"))
    assert "postgres-operator" in text and "cnpg-system" not in text


def test_computes_get_the_pooler_and_credentials_from_secrets(seed_render):
    env = {
        e["name"]: e
        for e in seed_render.get("Deployment", "tenant-api")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["PGHOST"]["value"] == "platform-db-pooler-rw.saas-net.svc.cluster.local"
    assert env["PGPORT"]["value"] == "5432" and env["PGDATABASE"]["value"] == "app"
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": "platform-db-router", "key": "username"}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "platform-db-router", "key": "password"}
    assert not any("value" in e and "PASSWORD" in name for name, e in env.items())
    # No per-tenant env: enterprise logins arrive as files (below), so tenants never change the pod spec.
    assert not any("TENANT" in name for name in env)
    router = seed_render.get("Secret", "platform-db-router")
    assert router["type"] == "kubernetes.io/basic-auth" and set(router["stringData"]) == {"username", "password"}


def test_computes_mount_the_enterprise_logins_read_only(seed_render):
    for name in ("tenant-api", "admin-ui"):
        pod = seed_render.get("Deployment", name)["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == LOGINS_VOLUME]
        assert volume == {
            "name": LOGINS_VOLUME,
            "secret": {"secretName": "platform-db-tenant-logins", "defaultMode": 0o440},
        }
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == LOGINS_VOLUME]
        # No subPath: the kubelet refreshes a whole-volume Secret mount in running pods.
        assert mount == {"name": LOGINS_VOLUME, "mountPath": LOGINS_DIR, "readOnly": True}


def test_enterprise_logins_secret_holds_each_enterprise_password_by_tenant_id(seed_render):
    run = seed_render.run.mocks
    logins = run.named("platform-db-tenant-logins")
    assert logins.inputs["stringData"][SECRET_SIG], "the passwords must be marked secret in Pulumi state"
    acme_password = tenant_password(stand_in("platform-db-tenant-logins-master", 32), "acme", 0)
    assert run.named("platform-db-tenant-logins-master").inputs == {"length": 32, "special": False}
    # Only the enterprise tenant (acme), holding the same password CNPG sets on its role.
    assert revealed(logins.inputs["stringData"]) == {"acme": acme_password}
    acme = run.named("platform-db-tenant-acme").inputs["stringData"]
    assert acme[SECRET_SIG] and revealed(acme) == {"username": "tenant_acme", "password": acme_password}


def test_tenant_password_is_an_hmac_of_the_master_per_tenant_and_version():
    # HMAC-SHA256(master, "tenant-login:<id>:<version>"), checked against the standard library.
    assert tenant_password("k", "acme", 0) == hmac.new(b"k", b"tenant-login:acme:0", hashlib.sha256).hexdigest()
    derived = {tenant_password(m, t, v) for m in ("k", "k2") for t in ("acme", "globex") for v in (0, 1)}
    assert len(derived) == 8 and all(len(p) == 64 and set(p) <= set("0123456789abcdef") for p in derived)


def test_login_version_rotates_that_tenants_password_alone(render):
    def passwords(rendered):
        return revealed(rendered.run.mocks.named("platform-db-tenant-logins").inputs["stringData"])

    tenants = [*DEV_TENANTS, {"id": "umbrella", "plan": "enterprise", "isolation": "rls"}]
    before = passwords(render({"tenants": tenants}))
    after = passwords(render({"tenants": [{**t, "loginVersion": 1} if t["id"] == "acme" else t for t in tenants]}))
    assert after["umbrella"] == before["umbrella"] and after["acme"] != before["acme"]
    assert after["acme"] == tenant_password(stand_in("platform-db-tenant-logins-master", 32), "acme", 1)


def test_no_master_without_enterprise_tenants(render):
    rendered = render({"tenants": [t for t in DEV_TENANTS if t.get("plan") != "enterprise"]})
    assert "platform-db-tenant-logins-master" not in {r.name for r in rendered.run.mocks.resources}


def test_enterprise_logins_secret_exists_without_enterprise_tenants(render):
    # The computes mount it unconditionally: a missing Secret would keep their pods from starting.
    rendered = render({"tenants": [t for t in DEV_TENANTS if t.get("plan") != "enterprise"]})
    logins = rendered.get("Secret", "platform-db-tenant-logins")
    assert logins.get("stringData", {}) == {}
    assert [
        v["secret"]["secretName"]
        for v in rendered.get("Deployment", "tenant-api")["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    ] == ["platform-db-tenant-logins"]


def test_tenants_become_roles_and_schemas(seed_render):
    roles = roles_by_name(seed_render)
    router = roles["tenant_router"]
    assert router["login"] is True and router["inherit"] is False
    # Business tenants only: the enterprise tenant's data is not reachable through the shared router.
    assert router["inRoles"] == ["tenant_globex", "tenant_initech"]
    assert roles["tenant_globex"] == {
        "name": "tenant_globex",
        "ensure": "present",
        "login": False,
        "inRoles": ["tenant_rls"],
    }
    assert roles["tenant_initech"] == {"name": "tenant_initech", "ensure": "present", "login": False}
    acme = roles["tenant_acme"]
    assert acme["login"] is True and acme["connectionLimit"] == 50 and acme["inRoles"] == ["tenant_login"]
    assert acme["passwordSecret"] == {"name": "platform-db-tenant-acme"}
    database = seed_render.get("Database", "platform-db-app")["spec"]
    assert database["databaseReclaimPolicy"] == "retain" and database["name"] == "app"
    assert database["schemas"] == [
        {"name": "tenant_acme", "owner": "app", "ensure": "present"},
        {"name": "tenant_initech", "owner": "app", "ensure": "present"},
    ]
    hba = seed_render.get("Cluster", "platform-db")["spec"]["postgresql"]["pg_hba"]
    assert hba == [*MIGRATOR_HBA, "host app tenant_acme all scram-sha-256", "host all +tenant_login all reject"]


def test_removing_a_tenant_keeps_its_role_and_schema(render):
    rendered = render({"tenants": without("initech")})
    roles, schemas = roles_by_name(rendered), schemas_by_name(rendered)
    # Absent from the lists: CloudNativePG ignores it, nothing is dropped...
    assert "tenant_initech" not in roles and "tenant_initech" not in schemas
    assert "absent" not in json.dumps([roles, schemas])
    # ...but the router loses its membership, so the computes lose access.
    assert "tenant_initech" not in roles["tenant_router"]["inRoles"]


def test_removed_enterprise_tenant_can_no_longer_log_in(render):
    rendered = render({"tenants": without("acme")})
    hba = rendered.get("Cluster", "platform-db")["spec"]["postgresql"]["pg_hba"]
    assert hba == [*MIGRATOR_HBA, "host all +tenant_login all reject"]
    assert "platform-db-tenant-acme" not in rendered.names("Secret")


def test_purge_renders_ensure_absent(render):
    rendered = render({"tenants": without("initech"), "purgeTenants": ["initech"]})
    assert roles_by_name(rendered)["tenant_initech"] == {"name": "tenant_initech", "ensure": "absent"}
    assert schemas_by_name(rendered)["tenant_initech"] == {"name": "tenant_initech", "ensure": "absent"}


def test_business_tenant_adds_no_resource_enterprise_adds_one(render):
    base = len(render().run.mocks.resources)
    business = render({"tenants": [*DEV_TENANTS, {"id": "umbrella", "plan": "business", "isolation": "rls"}]})
    assert len(business.run.mocks.resources) == base
    assert "tenant_umbrella" in roles_by_name(business)
    enterprise = render({"tenants": [*DEV_TENANTS, {"id": "umbrella", "plan": "enterprise", "isolation": "schema"}]})
    added = Counter(r.typ for r in enterprise.run.mocks.resources) - Counter(
        r.typ for r in business.run.mocks.resources
    )
    # Its password derives from the datastore's master: only CNPG's basic-auth Secret is new.
    assert added == Counter({"kubernetes:core/v1:Secret": 1})
    assert enterprise.get("Secret", "platform-db-tenant-umbrella")["type"] == "kubernetes.io/basic-auth"


def _options(config: dict) -> dict:
    """Pulumi options per resource name, seen through a stack transformation."""
    seen = {}

    def record(args):
        seen[args.name] = args.opts
        return None

    def program():
        pulumi.runtime.register_stack_transformation(record)
        Platform("b2b-platform", PlatformArgs.of(load_inputs(config, root=ROOT)))

    run_program(config, program=program)
    return seen


@pytest.mark.parametrize("protect", [True, False])
def test_stateful_objects_follow_protect_and_are_always_retained(protect):
    opts = _options(dev_config() | {"protect": protect})
    for name in ("platform-db-cluster", "platform-db-database", "platform-db-objectstore"):
        assert opts[name].protect is protect and opts[name].retain_on_delete is True, name
    assert not opts["platform-db-pooler"].protect and not opts["platform-db-pooler"].retain_on_delete


def test_tenant_ids_must_fit_a_postgres_role():
    long_id = "a" * (TENANT_ID_MAX_FOR_DATABASE + 1)
    with pytest.raises(InvalidInput) as info:
        load_inputs({"tenants": [{"id": long_id, "plan": "business", "isolation": "rls"}]}, root=ROOT)
    assert f"tenants[0].id: '{long_id}' is 57 characters; with a datastore, tenant ids are at most 56" in str(
        info.value
    )
    assert len(tenant_role("a" * TENANT_ID_MAX_FOR_DATABASE)) == 63


def test_worst_case_tenant_count_fits_the_object_size_limit():
    """MAX_DATABASE_TENANTS tenants with the longest ids: Cluster and Database stay under 1.5 MiB.

    Status is estimated from CNPG's status shapes: the role reconciler lists every role name
    by state, the Database reports `{name, applied}` per schema.
    """
    width = TENANT_ID_MAX_FOR_DATABASE - 5
    tenants = [
        {
            "id": f"t{i:04d}" + "x" * width,
            "plan": "enterprise" if i % 10 == 0 else "business",
            "isolation": "schema" if i % 2 else "rls",
        }
        for i in range(MAX_DATABASE_TENANTS)
    ]
    # 500 enterprise logins need a connection budget to match (components/connections.py).
    budget = {"enterpriseConnectionLimit": 2, "parameters": {"max_connections": "1100"}}
    args = args_for({"tenants": tenants, "datastore": budget})
    names = [tenant_role(t["id"]) for t in tenants]
    cluster = json.dumps(
        {
            "spec": cluster_spec(args, "platform-db-x"),
            "status": {"managedRolesStatus": {"byStatus": {"reconciled": names}}},
        }
    )
    database = json.dumps(
        {"spec": database_spec(args), "status": {"schemas": [{"name": n, "applied": True} for n in names]}}
    )
    limit = 1536 * 1024
    assert len(cluster) < limit * 0.9 and len(database) < limit * 0.9, (len(cluster), len(database))


def test_too_many_tenants_is_a_clear_error():
    tenants = [{"id": f"t{i}", "plan": "business", "isolation": "rls"} for i in range(MAX_DATABASE_TENANTS + 1)]
    with pytest.raises(InvalidInput) as info:
        load_inputs({"tenants": tenants}, root=ROOT)
    assert f"exceed the {MAX_DATABASE_TENANTS} one shared database holds" in str(info.value)


def test_builders_are_schema_valid_for_every_variant():
    for config in ({}, {"purgeTenants": ["gone"]}, {"tenants": []}):
        args = args_for(config)
        for kind, spec in (
            ("Cluster", cluster_spec(args, "platform-db-x")),
            ("Pooler", pooler_spec(args)),
            ("Database", database_spec(args)),
        ):
            obj = {"apiVersion": "postgresql.cnpg.io/v1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}
            assert validate(obj) == [], (kind, config)
    assert compute_env(args_for({"tenants": []}))[-1]["name"] == "PGPASSWORD"


def test_datastore_settings_are_validated():
    with pytest.raises(InvalidInput) as info:
        parse_settings({"datastore": {"backupRetention": "forever", "operatorNamespace": "CNPG", "bogus": 1}})
    text = str(info.value)
    assert (
        "datastore.backupRetention: 'forever' is not a Barman retention" in text
        and "datastore.operatorNamespace" in text
        and "datastore.bogus" in text
    )
    args = args_for(
        {"datastore": {"backupRetention": "4w", "parameters": {"max_connections": "300"}, "memoryLimit": "8Gi"}}
    )
    assert cluster_spec(args, "platform-db-x")["postgresql"]["parameters"]["max_connections"] == "300"
    assert (
        cluster_spec(args, "platform-db-x")["resources"]["limits"]["memory"] == "8Gi" and args.backup_retention == "4w"
    )


def test_poolers_can_never_open_more_than_the_server_accepts(seed_render):
    """PostgreSQL's default max_connections (100) against 2 poolers × 20 per (database, user)
    pool for every login: a few enterprise tenants exhausted the server. The rendered budget:
    every login's full pool, in every pooler, fits below max_connections minus the reserve."""
    cluster = seed_render.get("Cluster", "platform-db")["spec"]
    pooler = seed_render.get("Pooler", "platform-db-pooler-rw")["spec"]
    params = pooler["pgbouncer"]["parameters"]
    max_connections = int(cluster["postgresql"]["parameters"]["max_connections"])
    poolers = pooler["instances"]
    logins = [r for r in cluster["managed"]["roles"] if r.get("login")]
    pool = int(params["default_pool_size"])
    assert int(params["max_user_connections"]) == pool
    assert len(logins) * pool * poolers <= max_connections - RESERVED
    assert int(params["max_db_connections"]) * poolers <= max_connections - RESERVED
    # An enterprise role's own limit is what its pools can reach: PgBouncer queues, PostgreSQL never refuses it.
    for role in logins:
        if "connectionLimit" in role:
            assert pool * poolers <= role["connectionLimit"]
    # Every key is one CNPG passes to PgBouncer (cloudnative-pg v1.30.0
    # internal/webhook/v1/pooler_webhook.go, AllowedPgbouncerGenericConfigurationParameters).
    assert set(params) <= {
        "max_client_conn",
        "default_pool_size",
        "max_user_connections",
        "max_db_connections",
        "server_reset_query",
        "server_reset_query_always",
    }


def test_tenants_that_cannot_fit_the_budget_are_refused_before_anything_is_registered():
    many = [{"id": f"big{i}", "plan": "enterprise", "isolation": "schema"} for i in range(6)]
    with pytest.raises(InvalidInput) as info:
        load_inputs({"tenants": many}, root=ROOT)
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith("datastore.enterpriseConnectionLimit: 7 logins (the router and 6 enterprise tenants)")
    assert "max_connections 300" in problem and "at least 370" in problem and "to 40 or less" in problem
    # Raising the server's limit (or lowering the per-login one) makes the same tenants fit.
    load_inputs({"tenants": many, "datastore": {"parameters": {"max_connections": "400"}}}, root=ROOT)
    with pytest.raises(InvalidInput) as info:
        load_inputs({"datastore": {"parameters": {"max_connections": "lots"}}}, root=ROOT)
    assert [str(p) for p in info.value.problems] == [
        "datastore.parameters.max_connections: 'lots' is not a whole number"
    ]


def test_a_recreated_cluster_archives_into_a_fresh_directory(seed_render, render):
    """plugin-barman-cloud v0.14.0 refuses the first WAL after initdb unless `serverName`'s
    directory is empty (internal/cnpgi/common/wal.go Archive → CheckBackupDestination) and
    defaults `serverName` to the Cluster's name (internal/cnpgi/operator/config/config.go
    NewFromCluster); backups use the same `serverName` (internal/cnpgi/instance/backup.go).
    The bucket outlives the Cluster, so the name must change with each incarnation."""
    (plugin,) = seed_render.get("Cluster", "platform-db")["spec"]["plugins"]
    server = plugin["parameters"]["serverName"]
    assert server != "platform-db"
    # The suffix is a Pulumi resource of its own: destroy + up, or removing and re-adding the
    # datastore, deletes and re-creates it with the Cluster, so a new incarnation gets a new directory.
    incarnation = seed_render.run.mocks.named("platform-db-backup-incarnation")
    assert incarnation.typ == "random:index/randomString:RandomString" and incarnation.inputs["length"] == 8
    assert server == f"platform-db-{stand_in(incarnation.name, 8)}"
    # The scheduled backups name no other serverName: they follow the Cluster's.
    assert (
        "parameters" not in seed_render.get("ScheduledBackup", "platform-db-scheduled")["spec"]["pluginConfiguration"]
    )
    # Under a protected stack the suffix is protected with the Cluster.
    assert render({"protect": True}).run.mocks.named("platform-db-backup-incarnation").protect is True


EXTERNAL_BACKUPS = {
    "endpoint": "https://objects.backup.example:9000",
    "bucket": "acme-platform-backups",
    "credentialsSecret": "offsite-backup-keys",
    "caSecret": "offsite-backup-ca",
}


def test_backups_can_leave_the_cluster(render, tmp_path):
    """A store outside the cluster survives losing the cluster, the archive's single volume or its zone."""

    def no_archive(bp):
        bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] != "archive"]

    for blueprint in (None, variant(tmp_path, no_archive)):
        rendered = render({"datastore": {"backupStore": EXTERNAL_BACKUPS}}, blueprint=blueprint)
        store = rendered.get("ObjectStore", "platform-db-backups")
        assert validate(store) == []
        conf = store["spec"]["configuration"]
        assert conf["destinationPath"] == "s3://acme-platform-backups/"
        assert conf["endpointURL"] == "https://objects.backup.example:9000"
        assert conf["s3Credentials"]["secretAccessKey"] == {"name": "offsite-backup-keys", "key": "secretAccessKey"}
        assert conf["endpointCA"] == {"name": "offsite-backup-ca", "key": "ca.crt"}
        assert rendered.get("Cluster", "platform-db")["spec"]["plugins"][0]["isWALArchiver"] is True
        egress = rendered.get("NetworkPolicy", "platform-db-backup-egress")["spec"]
        assert egress["podSelector"]["matchLabels"]["cnpg.io/podRole"] == "instance"
        assert egress["egress"] == [{"ports": [{"port": 9000, "protocol": "TCP"}]}]
    # On 443 too: the instances' API egress reaches the API server's range only (apiServerCidr).
    on_443 = render({"datastore": {"backupStore": {**EXTERNAL_BACKUPS, "endpoint": "https://s3.example"}}})
    egress = on_443.get("NetworkPolicy", "platform-db-backup-egress")["spec"]["egress"]
    assert egress == [{"ports": [{"port": 443, "protocol": "TCP"}]}]


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("endpoint", "http://s3.example", "is not an https URL with a host"),
        ("endpoint", "https://s3.example/bucket", "only scheme, host and port"),
        ("bucket", "Backups", "is not an S3 bucket name"),
        ("credentialsSecret", "Keys_1", "DNS"),
    ],
)
def test_bad_backup_store_settings_name_the_key(field, value, message):
    with pytest.raises(InvalidInput) as info:
        load_inputs({"datastore": {"backupStore": {**EXTERNAL_BACKUPS, field: value}}}, root=ROOT)
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith(f"datastore.backupStore.{field}: ") and message in problem, problem


def test_multi_zone_ha_commits_on_a_standby_in_another_zone(seed_render, render, tmp_path):
    postgresql = seed_render.get("Cluster", "platform-db")["spec"]["postgresql"]
    assert postgresql["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
    # Off by default in one zone (the standbys share its fate anyway), and it can be turned off.
    one_zone = render(blueprint=variant(tmp_path, lambda bp: bp.update(resiliencia="zona-unica")))
    assert "synchronous" not in one_zone.get("Cluster", "platform-db")["spec"]["postgresql"]
    opted_out = render({"datastore": {"synchronous": False}})
    assert "synchronous" not in opted_out.get("Cluster", "platform-db")["spec"]["postgresql"]


def test_synchronous_without_standbys_is_refused():
    def no_ha(bp):
        resource(bp, "platform-db")["config"]["ha"] = False

    raw = seed()
    no_ha(raw)
    problems = cross_check_settings(parse_settings({"datastore": {"synchronous": True}}), parse_blueprint(raw))
    assert [str(p) for p in problems] == [
        (
            "datastore.synchronous: true needs standbys: datastore 'platform-db' has ha: false (one instance); set ha: "
            "true or remove it"
        )
    ]


def test_a_drain_never_takes_every_pooler_at_once(seed_render):
    pdb = seed_render.get("PodDisruptionBudget", "platform-db-pooler-rw")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": {"matchLabels": {"cnpg.io/poolerName": "platform-db-pooler-rw"}}}


def test_updates_reach_the_primary_by_switchover(seed_render):
    # CNPG's default (`restart`) restarts the primary in place: downtime on every image or restart-
    # parameter change (cloudnative-pg v1.30.0 api/v1/cluster_types.go PrimaryUpdateMethod).
    spec = seed_render.get("Cluster", "platform-db")["spec"]
    assert (spec["primaryUpdateStrategy"], spec["primaryUpdateMethod"]) == ("unsupervised", "switchover")


# --- switching plans in two phases (docs/layers/datastore.md, switching plans) ----------------------


def switched(tenant: str, plan: str, previous: str | None = None) -> list:
    extra = {"previousPlan": previous} if previous else {}
    return [{**t, "plan": plan, **extra} if t["id"] == tenant else t for t in DEV_TENANTS]


def logins_of(rendered) -> dict:
    return {
        "roles": roles_by_name(rendered),
        "hba": rendered.get("Cluster", "platform-db")["spec"]["postgresql"]["pg_hba"],
        "file": revealed(rendered.run.mocks.named("platform-db-tenant-logins").inputs["stringData"] or {}),
        "secrets": rendered.names("Secret"),
    }


def test_phase_one_to_enterprise_opens_the_own_login_and_keeps_the_router(render):
    phase = logins_of(render({"tenants": switched("globex", "enterprise", previous="business")}))
    globex = phase["roles"]["tenant_globex"]
    assert globex["login"] is True and globex["inRoles"] == ["tenant_rls", "tenant_login"]
    assert globex["passwordSecret"] == {"name": "platform-db-tenant-globex"} and globex["connectionLimit"] == 50
    assert "host app tenant_globex all scram-sha-256" in phase["hba"]
    # The router can still reach it while the computes' logins file gains its password.
    assert "tenant_globex" in phase["roles"]["tenant_router"]["inRoles"]
    master = stand_in("platform-db-tenant-logins-master", 32)
    assert phase["file"]["globex"] == tenant_password(master, "globex", 0)
    # Phase 2: the router loses it, nothing else changes.
    done = logins_of(render({"tenants": switched("globex", "enterprise")}))
    assert "tenant_globex" not in done["roles"]["tenant_router"]["inRoles"]
    assert done["roles"]["tenant_globex"] == globex and done["file"] == phase["file"] and done["hba"] == phase["hba"]


def test_phase_one_to_business_drops_the_file_first_and_keeps_the_login(render):
    before = logins_of(render({}))
    phase = logins_of(render({"tenants": switched("acme", "business", previous="enterprise")}))
    # The computes stop using the own login as their file loses it; the role still takes it meanwhile.
    assert "acme" not in phase["file"] and "acme" in before["file"]
    assert phase["roles"]["tenant_acme"] == before["roles"]["tenant_acme"]
    assert phase["hba"] == before["hba"] and "platform-db-tenant-acme" in phase["secrets"]
    assert "tenant_acme" in phase["roles"]["tenant_router"]["inRoles"]
    done = logins_of(render({"tenants": switched("acme", "business")}))
    assert done["roles"]["tenant_acme"] == {"name": "tenant_acme", "ensure": "present", "login": False}
    assert (
        "platform-db-tenant-acme" not in done["secrets"] and "tenant_acme" in done["roles"]["tenant_router"]["inRoles"]
    )


def test_a_switching_tenant_counts_as_a_login_and_may_keep_its_version():
    # Both logins exist during the switch, so its pool counts in the connection budget.
    settings = parse_settings(
        {
            "tenants": [
                {**t, "loginVersion": 2} if t["id"] == "acme" else t
                for t in switched("acme", "business", previous="enterprise")
            ],
            "datastore": {"parameters": {"max_connections": "119"}},
        }
    )
    assert [str(p) for p in cross_check_settings(settings, parse_blueprint(seed()))] == [
        (
            "datastore.enterpriseConnectionLimit: 2 logins (the router and 1 enterprise tenants) × 50 connections = "
            "100 exceed max_connections 119 minus 20 reserved; raise datastore.parameters.max_connections to at "
            "least 120 or lower datastore.enterpriseConnectionLimit to 48 or less"
        )
    ]


def test_previous_plan_must_differ_from_plan():
    settings = parse_settings({"tenants": switched("globex", "business", previous="business")})
    assert [str(p) for p in cross_check_settings(settings, parse_blueprint(seed()))] == [
        (
            "tenants[1].previousPlan: 'business' is the tenant's plan already; previousPlan names the plan a switch "
            "comes from (business or enterprise, not plan): remove it (docs/layers/datastore.md, switching plans)"
        )
    ]


def test_a_job_applies_the_migrations_with_its_own_login(seed_render):
    (job,) = seed_render.kind("Job")
    assert validate(job) == []
    assert job["metadata"]["name"].startswith("platform-db-migrations-")
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    assert "ttlSecondsAfterFinished" not in job["spec"]
    pod = job["spec"]["template"]["spec"]
    assert restricted_violations(pod) == [] and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == seed_render.get("Cluster", "platform-db")["spec"]["imageName"]
    assert container["command"][:2] == ["sh", "-c"]
    assert container["command"][2].endswith("exec psql -X -q -v ON_ERROR_STOP=1 -f /migrations/migrate.sql")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    # The primary directly (the runner's session lock and SET ROLE need a session, not the pooler).
    assert env["PGHOST"] == "platform-db-rw.saas-net.svc.cluster.local" and env["PGSSLMODE"] == "require"
    for name, key in (("PGUSER", "username"), ("PGPASSWORD", "password")):
        assert env[name] == {"secretKeyRef": {"name": "platform-db-migrator", "key": key}}
    assert seed_render.get("Secret", "platform-db-migrator")["type"] == "kubernetes.io/basic-auth"
    login = revealed(seed_render.run.mocks.named("platform-db-migrator").inputs["stringData"])
    assert login["username"] == "platform_migrator" and len(login["password"]) == 32
    assert roles_by_name(seed_render)["platform_migrator"]["superuser"] is True
    # Only the Job mounts the migrator's Secret.
    mounting = [o["metadata"]["name"] for o in seed_render.objects if "platform-db-migrator" in json.dumps(o)]
    assert sorted(mounting) == sorted(["platform-db", "platform-db-migrator", job["metadata"]["name"]])
    (volume,) = pod["volumes"]
    config = seed_render.get("ConfigMap", volume["configMap"]["name"])
    assert config["immutable"] is True and sorted(config["data"]) == ["0001_tenancy.sql", "migrate.sql"]
    # pg_hba's podselector names the Job's pods.
    cluster = seed_render.get("Cluster", "platform-db")["spec"]
    (ref,) = cluster["podSelectorRefs"]
    assert ref["name"] == "migrations"
    assert ref["selector"]["matchLabels"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert "postInitApplicationSQLRefs" not in cluster["bootstrap"]["initdb"]


def test_a_new_migration_set_is_a_new_job_and_config_map():
    args = args_for()
    more = dataclasses.replace(args, migrations=(*args.migrations, Migration("0002_x.sql", "SELECT 1;")))
    assert migrations_job(more)[0] != migrations_job(args)[0]
    assert migrations_config_name(more) != migrations_config_name(args)
    assert migrations_job(args) == migrations_job(args_for())
    newer = dataclasses.replace(args, image=args.image + "-1")
    assert migrations_job(newer)[0] != migrations_job(args)[0]


def test_the_database_waits_for_the_migrations():
    opts = _options(dev_config())
    depends = {getattr(d, "_name", None) for d in opts["platform-db-database"].depends_on}
    assert "platform-db-migrations" in depends and "platform-db-cluster" in depends
    assert opts["platform-db-migrations"].custom_timeouts.create == "900s"


RESTORE = {"serverName": "platform-db-x7k2m9qa", "targetTime": "2026-11-30T08:15:00+01:00"}


def test_a_recovery_bootstraps_from_the_earlier_incarnations_backups(seed_render, render, tmp_path):
    """cloudnative-pg v1.30.0 api/v1/cluster_types.go BootstrapRecovery (`source`, `database`,
    `owner`, `recoveryTarget.targetTime`), ExternalCluster (`plugin`: PluginConfiguration) and
    docs/src/recovery.md; plugin-barman-cloud v0.14.0 web/docs/usage.md "Restoring a Cluster" and
    parameters.md: the externalClusters entry names the plugin with `barmanObjectName` and
    `serverName`, and `.spec.plugins` beside it keeps the restored cluster archiving."""

    def no_archive(bp):
        bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] != "archive"]

    for config, blueprint in (
        ({"datastore": {"recovery": RESTORE}}, None),
        ({"datastore": {"recovery": RESTORE, "backupStore": EXTERNAL_BACKUPS}}, variant(tmp_path, no_archive)),
    ):
        rendered = render(config, blueprint=blueprint)
        cluster = rendered.get("Cluster", "platform-db")
        assert validate(cluster) == []
        spec = cluster["spec"]
        assert spec["bootstrap"] == {
            "recovery": {
                "source": "origin",
                "database": "app",
                "owner": "app",
                "recoveryTarget": {"targetTime": "2026-11-30T08:15:00+01:00"},
            }
        }
        assert spec["externalClusters"] == [
            {
                "name": "origin",
                "plugin": {
                    "name": "barman-cloud.cloudnative-pg.io",
                    "parameters": {"barmanObjectName": "platform-db-backups", "serverName": "platform-db-x7k2m9qa"},
                },
            }
        ]
        # The restored cluster archives into its own, new directory of the same ObjectStore: the
        # plugin's restore refuses a non-empty one (internal/cnpgi/restore/restore.go Restore →
        # checkBackupDestination), and CNPG's recovery.md asks for a unique serverName per cluster.
        (archiver,) = spec["plugins"]
        assert archiver["parameters"] == {
            "barmanObjectName": "platform-db-backups",
            "serverName": "platform-db-" + stand_in("platform-db-backup-incarnation", 8),
        }
        assert archiver["parameters"]["serverName"] != RESTORE["serverName"]
        # The restore Job reads the ObjectStore: the Cluster is created after it.
        assert "platform-db-objectstore" in rendered.run.mocks.depends_on("platform-db-cluster")
    # Without recovery: initdb, no external cluster, no ordering on the store (the golden is unchanged).
    spec = seed_render.get("Cluster", "platform-db")["spec"]
    assert list(spec["bootstrap"]) == ["initdb"] and "externalClusters" not in spec
    assert "platform-db-objectstore" not in seed_render.run.mocks.depends_on("platform-db-cluster")


def test_a_recovery_without_a_target_replays_the_whole_archive():
    spec = cluster_spec(args_for({"datastore": {"recovery": {"serverName": "platform-db"}}}), "platform-db-x")
    # The incarnation-less name of the first releases is a directory this program wrote too.
    assert spec["bootstrap"] == {"recovery": {"source": "origin", "database": "app", "owner": "app"}}
    assert spec["externalClusters"][0]["plugin"]["parameters"]["serverName"] == "platform-db"


@pytest.mark.parametrize(
    "recovery,edit,message",
    [
        (
            {"serverName": "Platform_DB/1"},
            None,
            "datastore.recovery.serverName: 'Platform_DB/1' is not a backup directory of this program's",
        ),
        (
            {**RESTORE, "targetTime": "2026-11-30 08:15:00"},
            None,
            "datastore.recovery.targetTime: '2026-11-30 08:15:00' is not an RFC 3339 time with a time zone",
        ),
        (
            {**RESTORE, "targetTime": "2026-11-30T08:15:00"},
            None,
            "datastore.recovery.targetTime: '2026-11-30T08:15:00' is not an RFC 3339 time with a time zone",
        ),
        (
            {**RESTORE, "targetTime": "2026-02-30T08:15:00Z"},
            None,
            "datastore.recovery.targetTime: '2026-02-30T08:15:00Z' is not an RFC 3339 time",
        ),
        ({"targetTime": "2026-11-30T08:15:00Z"}, None, "datastore.recovery.serverName: "),
        (
            RESTORE,
            lambda bp: bp["recursos"].remove(resource(bp, "tenant-files")),
            "datastore.recovery: serverName 'platform-db-x7k2m9qa' is read from the backup store, and there is none",
        ),
    ],
    ids=["server-name", "no-T-no-zone", "no-zone", "no-such-day", "no-server-name", "no-backup-store"],
)
def test_bad_recovery_settings_name_the_key(tmp_path, recovery, edit, message):
    config = {"datastore": {"recovery": recovery}}
    if edit:
        config["blueprint"] = variant(tmp_path, edit)
    with pytest.raises(InvalidInput) as info:
        load_inputs(config, root=ROOT)
    (problem,) = [str(p) for p in info.value.problems]
    assert problem.startswith(message), problem
