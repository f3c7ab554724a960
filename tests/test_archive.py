import json

import pytest
from conftest import child_protection, resource, revealed, seed, variant

from components import meta
from components.archive import Archive, ArchiveArgs, compute_env, identities, statefulset_spec
from components.blueprint import parse_blueprint
from components.contracts import DatabaseRef, ObjectStoreRef
from components.podsecurity import restricted_violations
from components.problems import InvalidInput
from components.settings import cross_check_settings, parse_settings

SEED_STORE = ObjectStoreRef("tenant-files", "saas-net")


def public_seed(bp: dict) -> None:
    resource(bp, "tenant-files")["config"]["publico"] = True


def args_for(edit=None, config: dict | None = None) -> ArchiveArgs:
    bp = seed()
    if edit:
        edit(bp)
    parsed = parse_blueprint(bp)
    return ArchiveArgs.of(parsed.one("archive"), parsed, parse_settings(config or {}))


def test_seed_archive_objects_follow_the_contract(seed_render):
    sts = seed_render.get("StatefulSet", "tenant-files")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["selector"]["matchLabels"] == SEED_STORE.selector
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "500Gi"
    assert claim["spec"]["storageClassName"] == "standard"  # the dev stack's storageClass
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    svc = seed_render.get("Service", "tenant-files")
    assert svc["spec"]["type"] == "ClusterIP"
    assert {"name": "s3", "port": 8333, "targetPort": "s3", "protocol": "TCP"} in svc["spec"]["ports"]
    assert SEED_STORE.endpoint == "http://tenant-files.saas-net.svc.cluster.local:8333"
    for role, name in (("backup", SEED_STORE.credentials_secret), ("app", SEED_STORE.app_credentials_secret)):
        secret = seed_render.run.mocks.named(f"tenant-files-{role}-credentials").inputs
        assert secret["metadata"]["name"] == name
        assert set(revealed(secret["stringData"])) == {"accessKeyId", "secretAccessKey"}


def test_size_and_storage_class_follow_config(render, tmp_path):
    rendered = render(
        {"storageClass": "fast-ssd"},
        blueprint=variant(tmp_path, lambda bp: resource(bp, "tenant-files")["config"].update(tamanho_gb=42)),
    )
    claim = rendered.get("StatefulSet", "tenant-files")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "42Gi" and claim["storageClassName"] == "fast-ssd"
    assert "storageClassName" not in statefulset_spec(args_for())["volumeClaimTemplates"][0]["spec"]  # cluster default


def test_buckets_are_created_by_seaweedfs_at_start():
    args = statefulset_spec(args_for())["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "mini"
    assert "-bucket=tenant-files-tenants,tenant-files-backups" in args
    assert "-s3.config=/etc/seaweedfs/s3/s3.json" in args
    # Nobody gets to make buckets on the fly, empty buckets only may be deleted, no extra servers.
    for flag in (
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
    ):
        assert flag in args


def test_each_key_pair_reaches_one_bucket_only():
    found = identities(args_for(), ("APPKEY", "appsecret"), ("BACKUPKEY", "backupsecret"))["identities"]
    by_name = {i["name"]: i for i in found}
    assert set(by_name) == {"platform", "backup"}
    assert by_name["platform"]["credentials"] == [{"accessKey": "APPKEY", "secretKey": "appsecret"}]
    assert by_name["platform"]["actions"] == [f"{a}:tenant-files-tenants" for a in ("Read", "Write", "List", "Tagging")]
    assert by_name["backup"]["actions"] == [f"{a}:tenant-files-backups" for a in ("Read", "Write", "List")]


def test_identities_config_is_a_secret_holding_the_generated_keys(seed_render):
    mocks = seed_render.run.mocks
    config = mocks.named("tenant-files-s3-config").inputs["stringData"]
    assert config != revealed(config)  # wrapped as a Pulumi secret
    parsed = json.loads(revealed(config)["s3.json"])
    app = revealed(mocks.named("tenant-files-app-credentials").inputs["stringData"])
    backup = revealed(mocks.named("tenant-files-backup-credentials").inputs["stringData"])
    keys = {i["name"]: i["credentials"][0] for i in parsed["identities"]}
    assert keys["platform"] == {"accessKey": app["accessKeyId"], "secretKey": app["secretAccessKey"]}
    assert keys["backup"] == {"accessKey": backup["accessKeyId"], "secretKey": backup["secretAccessKey"]}
    volumes = seed_render.get("StatefulSet", "tenant-files")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "s3-config", "secret": {"secretName": "tenant-files-s3-config", "defaultMode": 0o440}} in volumes
    assert {
        r.inputs.get("length")
        for r in mocks.of_type("random:index/randomPassword:RandomPassword")
        if r.name.startswith("tenant-files-")
    } == {20.0, 40.0}


def test_private_archive_has_no_route_and_no_anonymous_access(seed_render):
    assert [
        i for i in seed_render.kind("Ingress") if i["metadata"]["labels"]["app.kubernetes.io/component"] == "archive"
    ] == []
    labels = seed_render.get("StatefulSet", "tenant-files")["spec"]["template"]["metadata"]["labels"]
    assert meta.ENTRYPOINT_LABEL not in labels
    assert "anonymous" not in {i["name"] for i in identities(args_for(), ("a", "b"), ("c", "d"))["identities"]}


def test_public_archive_serves_the_tenant_bucket_read_only(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, public_seed))
    ingress = rendered.get("Ingress", "tenant-files")["spec"]
    assert ingress["ingressClassName"] == "traefik"
    (rule,) = ingress["rules"]
    assert rule["host"] == "files.app.acme.io"
    assert rule["http"]["paths"] == [
        {
            "path": "/tenant-files-tenants",
            "pathType": "Prefix",
            "backend": {"service": {"name": "tenant-files", "port": {"name": "s3"}}},
        }
    ]
    assert ingress["tls"] == [{"hosts": ["files.app.acme.io"], "secretName": "tenant-files-public-tls"}]
    cert = rendered.get("Certificate", "tenant-files-public")["spec"]
    assert cert["dnsNames"] == ["files.app.acme.io"] and cert["issuerRef"]["name"] == "b2b-local-ca"
    labels = rendered.get("StatefulSet", "tenant-files")["spec"]["template"]["metadata"]["labels"]
    assert labels[meta.ENTRYPOINT_LABEL] == "true"  # the fabric's allow-edge policy admits the edge controller
    anonymous = [
        i for i in identities(args_for(public_seed), ("a", "b"), ("c", "d"))["identities"] if i["name"] == "anonymous"
    ]
    assert anonymous == [{"name": "anonymous", "actions": ["Read:tenant-files-tenants"]}]


def test_public_archive_without_tls_gets_no_certificate(render):
    rendered = render({"tenants": []}, blueprint="blueprints/examples/single-zone.json")
    assert "tls" not in rendered.get("Ingress", "tenant-files")["spec"]
    assert rendered.kind("Certificate") == []
    assert rendered.get("Ingress", "tenant-files")["spec"]["rules"][0]["host"] == "files.app.example.test"


def test_public_host_is_reserved_and_configurable():
    args = args_for(public_seed, {"archive": {"publicHost": "cdn-files"}})
    assert args.public_host == "cdn-files.app.acme.io"
    problems = cross_check_settings(
        parse_settings({"tenants": [{"id": "files", "plan": "business", "isolation": "schema"}]}),
        parse_blueprint(seed()),
    )
    assert [str(p) for p in problems] == [
        "tenants[0].id: 'files' is reserved (platform hosts and resource names cannot be tenant ids)"
    ]


def test_public_archive_needs_a_gateway_and_a_public_fabric():
    bp = seed()
    public_seed(bp)
    bp["recursos"] = [r for r in bp["recursos"] if r["tipo"] != "gateway"]
    with pytest.raises(InvalidInput) as info:
        parse_blueprint(bp)
    assert [str(p) for p in info.value.problems] == [
        (
            "recursos[4].config.publico: true needs a gateway resource and a fabric with publica: true (the public "
            "route is files.<gateway domain>)"
        )
    ]


def test_archive_name_leaves_room_for_bucket_suffixes():
    bp = seed()
    resource(bp, "tenant-files")["nome"] = "a" * 56
    with pytest.raises(InvalidInput) as info:
        parse_blueprint(bp)
    assert str(info.value.problems[0]).startswith("recursos[4].nome: an archive name has at most 55 characters")


def test_only_computes_and_database_pods_reach_s3(seed_render):
    policy = seed_render.get("NetworkPolicy", "tenant-files-s3")["spec"]
    assert policy["podSelector"] == {"matchLabels": SEED_STORE.selector}
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {meta.LAYER_LABEL: "compute"}}},
                {"podSelector": {"matchLabels": DatabaseRef("platform-db", "saas-net").instance_selector}},
            ],
            "ports": [{"protocol": "TCP", "port": 8333}],
        }
    ]


def test_without_a_datastore_only_computes_reach_s3(render, tmp_path):
    rendered = render(
        blueprint=variant(
            tmp_path, lambda bp: bp.update(recursos=[r for r in bp["recursos"] if r["tipo"] != "datastore"])
        )
    )
    assert rendered.get("NetworkPolicy", "tenant-files-s3")["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {meta.LAYER_LABEL: "compute"}}}
    ]


def test_runs_as_seaweed_user_with_only_data_and_tmp_writable():
    pod = statefulset_spec(args_for())["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["fsGroup"] == 65532
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/data", "/tmp"}
    assert pod["automountServiceAccountToken"] is False


def test_purge_deletes_the_volume_with_the_statefulset(render):
    sts = render({"archive": {"purge": True}}).get("StatefulSet", "tenant-files")
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}


@pytest.mark.parametrize("protect", [True, False])
def test_protect_guards_the_statefulset_only(protect):
    args = args_for(config={"protect": protect})
    found = child_protection(lambda: Archive("tenant-files", args))
    assert found.pop("tenant-files-statefulset") is protect
    assert not any(found.values())


def test_compute_env_has_endpoint_bucket_and_keys_from_the_app_secret():
    env = {e["name"]: e for e in compute_env(SEED_STORE)}
    assert env["AWS_ENDPOINT_URL_S3"]["value"] == SEED_STORE.endpoint
    assert env["S3_BUCKET"]["value"] == "tenant-files-tenants"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "tenant-files-s3-app", "key": "accessKeyId"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "tenant-files-s3-app", "key": "secretAccessKey"}
    }


def test_statefulset_is_governed_by_a_headless_service(seed_render):
    sts = seed_render.get("StatefulSet", "tenant-files")["spec"]
    headless = seed_render.get("Service", sts["serviceName"])["spec"]
    assert sts["serviceName"] == "tenant-files-headless" and headless["clusterIP"] == "None"
    assert headless["selector"] == sts["selector"]["matchLabels"]


def test_stale_mini_options_are_cleared_before_weed_starts(seed_render):
    """seaweedfs 4.44 weed/command/mini.go: saveMiniConfiguration writes <dir>/mini.options after
    start; loadMiniConfigurationFile + applyConfigFileOptions apply it to every flag still at its
    default at the next start. Deleting it first makes the rendered args the only configuration."""
    pod = seed_render.get("StatefulSet", "tenant-files")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["command"] == ["rm", "-f", "/data/mini.options"]
    assert init["volumeMounts"] == [{"name": "data", "mountPath": "/data"}]
    assert restricted_violations(pod) == []


def test_ready_only_once_the_buckets_exist(seed_render):
    """mini.go creates `-bucket` after the S3 gateway answers /healthz and only logs a failure
    (ensureMiniBuckets); the filer answers 404 for a missing path and the entry with
    `metadata=true` for a directory (weed/server/filer_server_handlers_read.go GetOrHeadHandler)."""
    (weed,) = seed_render.get("StatefulSet", "tenant-files")["spec"]["template"]["spec"]["containers"]
    assert "-filer.port=8888" in weed["args"]
    assert {"name": "filer", "containerPort": 8888, "protocol": "TCP"} in weed["ports"]
    assert weed["startupProbe"]["httpGet"] == {"path": "/buckets/tenant-files-tenants?metadata=true", "port": "filer"}
    assert weed["readinessProbe"]["httpGet"] == {"path": "/buckets/tenant-files-backups?metadata=true", "port": "filer"}
    assert "-bucket=tenant-files-tenants,tenant-files-backups" in weed["args"]
    # The filer port is for the kubelet only: neither Service nor NetworkPolicy exposes it.
    for name in ("tenant-files", "tenant-files-headless"):
        assert all(p["port"] != 8888 for p in seed_render.get("Service", name)["spec"]["ports"])
    assert seed_render.get("NetworkPolicy", "tenant-files-s3")["spec"]["ingress"][0]["ports"] == [
        {"port": 8333, "protocol": "TCP"}
    ]
