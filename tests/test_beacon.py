import json

import pytest
from conftest import child_protection, resource, revealed, seed, variant

from components import meta
from components.beacon import Beacon, BeaconArgs, compute_env, permissions, server_config, statefulset_spec
from components.blueprint import parse_blueprint
from components.contracts import BrokerRef
from components.problems import InvalidInput
from components.settings import parse_settings

SEED_BROKER = BrokerRef("lifecycle", "saas-net")
NACK = "jetstream.nats.io/v1beta2"


def core_only(bp: dict) -> None:
    resource(bp, "lifecycle")["config"]["jetstream"] = False


def single_zone(bp: dict) -> None:
    bp["resiliencia"] = "zona-unica"


def args_for(*edits, config: dict | None = None) -> BeaconArgs:
    bp = seed()
    for edit in edits:
        edit(bp)
    parsed = parse_blueprint(bp)
    return BeaconArgs.of(parsed.one("beacon"), parsed, parse_settings(config or {}))


def rendered_config(rendered) -> dict:
    return json.loads(revealed(rendered.run.mocks.named("lifecycle-config").inputs["stringData"])["nats.conf"])


def test_multi_zona_runs_three_clustered_servers_across_zones(seed_render):
    sts = seed_render.get("StatefulSet", "lifecycle")["spec"]
    assert sts["replicas"] == 3 and sts["podManagementPolicy"] == "Parallel"
    assert sts["serviceName"] == "lifecycle-headless"
    spread = sts["template"]["spec"]["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == [meta.ZONE_KEY, meta.HOST_KEY] and spread[0][
        "whenUnsatisfiable"
    ] == "DoNotSchedule"
    cluster = rendered_config(seed_render)["cluster"]
    assert cluster["name"] == "lifecycle"
    assert [r.split("@")[1] for r in cluster["routes"]] == [
        f"lifecycle-{i}.lifecycle-headless.saas-net.svc.cluster.local:6222" for i in range(3)
    ]
    assert all(r.startswith(f"nats://route:{cluster['authorization']['password']}@") for r in cluster["routes"])
    assert seed_render.get("Stream", "tenant-lifecycle")["spec"]["replicas"] == 3
    headless = seed_render.get("Service", "lifecycle-headless")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["name"] for p in headless["ports"]} == {"client", "cluster"}


def test_zona_unica_runs_one_server_without_cluster(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, single_zone))
    sts = rendered.get("StatefulSet", "lifecycle")["spec"]
    assert sts["replicas"] == 1
    assert [c["topologyKey"] for c in sts["template"]["spec"]["topologySpreadConstraints"]] == [meta.HOST_KEY]
    assert "cluster" not in rendered_config(rendered)
    assert "lifecycle-routes" not in rendered.names("NetworkPolicy")
    assert rendered.get("Stream", "tenant-lifecycle")["spec"]["replicas"] == 1
    assert rendered.get("PodDisruptionBudget", "lifecycle")["spec"]["maxUnavailable"] == 1


def test_jetstream_keeps_a_file_store_per_server_on_its_own_volume(seed_render):
    sts = seed_render.get("StatefulSet", "lifecycle")["spec"]
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data" and claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    js = rendered_config(seed_render)["jetstream"]
    assert js["store_dir"] == "/data" and js["max_file_store"] == 10 * 1024**3 * 9 // 10
    nats = sts["template"]["spec"]["containers"][0]
    assert {"name": "data", "mountPath": "/data"} in nats["volumeMounts"]
    assert nats["livenessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"


def test_core_only_has_no_stream_no_volume_and_no_nack(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, core_only))
    sts = rendered.get("StatefulSet", "lifecycle")["spec"]
    assert "volumeClaimTemplates" not in sts and "persistentVolumeClaimRetentionPolicy" not in sts
    assert not [o for o in rendered.objects if o["apiVersion"] == NACK]
    conf = rendered_config(rendered)
    assert "jetstream" not in conf and "jetstream" not in conf["accounts"]["PLATFORM"]
    assert [u["user"] for u in conf["accounts"]["PLATFORM"]["users"]] == ["api", "billing", "crm"]
    assert "lifecycle-nack" not in rendered.names("Secret")
    # Consumers may only listen to the events, and publish nothing.
    assert conf["accounts"]["PLATFORM"]["users"][1]["permissions"] == {
        "publish": {"deny": [">"]},
        "subscribe": {
            "allow": [
                "tenants.*.lifecycle.signup",
                "tenants.*.lifecycle.plan_changed",
                "tenants.*.lifecycle.offboarded",
            ]
        },
    }
    clients = rendered.get("NetworkPolicy", "lifecycle-clients")["spec"]["ingress"][0]["from"]
    assert not any("namespaceSelector" in peer for peer in clients)


def test_users_get_least_privilege():
    args = args_for()
    assert permissions(args, "api") == {
        "publish": {
            "allow": [
                "tenants.*.lifecycle.signup",
                "tenants.*.lifecycle.plan_changed",
                "tenants.*.lifecycle.offboarded",
            ]
        },
        "subscribe": {"allow": ["_INBOX_api.>"]},
    }
    assert permissions(args, "crm") == {
        "publish": {
            "allow": [
                "$JS.API.CONSUMER.MSG.NEXT.tenant-lifecycle.crm",
                "$JS.API.CONSUMER.INFO.tenant-lifecycle.crm",
                "$JS.ACK.tenant-lifecycle.crm.>",
                "$JS.ACK.*.*.tenant-lifecycle.crm.>",
            ]
        },
        "subscribe": {"allow": ["_INBOX_crm.>"]},
    }
    assert permissions(args, "nack") == {"publish": {"allow": ["$JS.API.>"]}, "subscribe": {"allow": ["_INBOX.>"]}}


def test_every_user_has_a_generated_password_in_its_own_secret(seed_render):
    mocks = seed_render.run.mocks
    users = {u["user"]: u["password"] for u in rendered_config(seed_render)["accounts"]["PLATFORM"]["users"]}
    assert set(users) == {"api", "billing", "crm", "nack"}
    for user, password in users.items():
        secret = mocks.named(f"lifecycle-{user}-credentials").inputs
        assert (
            secret["metadata"]["name"] == SEED_BROKER.user_secret(user) and secret["type"] == "kubernetes.io/basic-auth"
        )
        assert revealed(secret["stringData"]) == {"username": user, "password": password}
    generated = {
        r.name for r in mocks.of_type("random:index/randomPassword:RandomPassword") if r.name.startswith("lifecycle-")
    }
    assert generated == {f"lifecycle-{r}-password" for r in ("api", "billing", "crm", "nack", "route")}
    assert len(set(users.values())) == 4
    config = mocks.named("lifecycle-config").inputs["stringData"]
    assert config != revealed(config)  # the config holds passwords: a Pulumi secret in a Secret


def test_nack_connects_through_an_account_holding_the_nack_secret(seed_render):
    account = seed_render.get("Account", "lifecycle")["spec"]
    assert account == {
        "servers": [SEED_BROKER.url],
        "user": {"secret": {"name": "lifecycle-nack"}, "user": "username", "password": "password"},
    }
    stream = seed_render.get("Stream", "tenant-lifecycle")["spec"]
    assert stream["account"] == "lifecycle"
    for durable in ("billing", "crm"):
        consumer = seed_render.get("Consumer", f"lifecycle-{durable}")["spec"]
        assert consumer["account"] == "lifecycle" and consumer["streamName"] == "tenant-lifecycle"
        assert (
            consumer["durableName"] == durable
            and consumer["ackPolicy"] == "explicit"
            and "deliverSubject" not in consumer
        )  # pull
        assert consumer["preventDelete"] is True


def test_stream_holds_every_tenants_events_within_limits(seed_render):
    stream = seed_render.get("Stream", "tenant-lifecycle")["spec"]
    assert stream["subjects"] == [
        "tenants.*.lifecycle.signup",
        "tenants.*.lifecycle.plan_changed",
        "tenants.*.lifecycle.offboarded",
    ]
    assert stream["storage"] == "file" and stream["retention"] == "limits" and stream["discard"] == "old"
    assert stream["maxAge"] == "2160h" and stream["maxBytes"] == 5 * 1024**3
    assert stream["preventDelete"] is True
    # One stream for all tenants: onboarding never adds broker objects.
    assert len(seed_render.kind("Stream")) == 1 and len(seed_render.kind("Consumer")) == 2


def test_stream_limits_and_storage_follow_settings(render):
    rendered = render(
        {"beacon": {"streamMaxAge": "720h", "streamMaxBytes": 1024**3, "storageGb": 20, "nackNamespace": "nack-system"}}
    )
    stream = rendered.get("Stream", "tenant-lifecycle")["spec"]
    assert stream["maxAge"] == "720h" and stream["maxBytes"] == 1024**3
    claim = rendered.get("StatefulSet", "lifecycle")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    nack_peer = rendered.get("NetworkPolicy", "lifecycle-clients")["spec"]["ingress"][0]["from"][2]
    assert nack_peer == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nack-system"}}}


def test_stream_must_fit_the_volume():
    with pytest.raises(InvalidInput) as info:
        parse_settings({"beacon": {"storageGb": 1, "streamMaxBytes": 2 * 1024**3}})
    assert [str(p) for p in info.value.problems] == [
        "beacon.streamMaxBytes: must fit in 90% of storageGb (1 GiB) (got 2147483648)"
    ]


def test_only_computes_consumers_and_nack_reach_the_client_port(seed_render):
    clients = seed_render.get("NetworkPolicy", "lifecycle-clients")["spec"]
    assert clients["podSelector"] == {"matchLabels": SEED_BROKER.selector}
    assert clients["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {meta.LAYER_LABEL: "compute"}}},
                {"podSelector": {"matchLabels": {"b2b-platform.io/beacon-client": "lifecycle"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nack"}}},
            ],
            "ports": [{"protocol": "TCP", "port": 4222}],
        }
    ]
    routes = seed_render.get("NetworkPolicy", "lifecycle-routes")["spec"]
    assert routes["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": SEED_BROKER.selector}}], "ports": [{"protocol": "TCP", "port": 6222}]}
    ]


def test_metrics_port_for_insight_and_monitor_port_stays_inside_the_pod(seed_render):
    pod = seed_render.get("StatefulSet", "lifecycle")["spec"]["template"]["spec"]
    nats, exporter = pod["containers"]
    assert {"name": "http-monitor", "containerPort": 8222, "protocol": "TCP"} in nats["ports"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 7777, "protocol": "TCP"}]
    assert exporter["args"][-1] == "http://localhost:8222" and "-jsz=all" in exporter["args"]
    svc = seed_render.get("Service", "lifecycle")["spec"]
    assert [(p["name"], p["port"]) for p in svc["ports"]] == [("client", 4222), ("metrics", 7777)]


def test_servers_are_named_after_their_pod_and_drain_in_lame_duck_mode():
    nats = statefulset_spec(args_for())["template"]["spec"]["containers"][0]
    assert nats["args"] == ["--config", "/etc/nats/nats.conf", "--name", "$(POD_NAME)"]
    assert nats["env"][0] == {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    assert nats["lifecycle"]["preStop"]["exec"]["command"] == ["nats-server", "--signal=ldm=/var/run/nats/nats.pid"]
    assert (
        server_config(args_for(), dict.fromkeys(("api", "billing", "crm", "nack", "route"), "x"))["pid_file"]
        == "/var/run/nats/nats.pid"
    )
    pod = statefulset_spec(args_for())["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 30  # longer than lame_duck_duration
    writable = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", []) if not m.get("readOnly")}
    assert writable == {"/data", "/var/run/nats"}


@pytest.mark.parametrize("protect,jetstream,expected", [(True, True, True), (False, True, False), (True, False, False)])
def test_protect_guards_stored_events(protect, jetstream, expected):
    args = args_for(*(() if jetstream else (core_only,)), config={"protect": protect})
    found = child_protection(lambda: Beacon("lifecycle", args))
    assert found.pop("lifecycle-statefulset") is expected
    if jetstream:
        assert found.pop("lifecycle-stream") is expected
    assert not any(found.values())


def test_purge_deletes_the_volumes_with_the_statefulset(render):
    sts = render({"beacon": {"purge": True}}).get("StatefulSet", "lifecycle")["spec"]
    assert sts["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"


def test_compute_env_connects_as_api():
    env = {e["name"]: e for e in compute_env(SEED_BROKER)}
    assert env["NATS_URL"]["value"] == "nats://lifecycle.saas-net.svc.cluster.local:4222"
    assert env["NATS_USER"]["valueFrom"] == {"secretKeyRef": {"name": "lifecycle-api", "key": "username"}}
    assert env["NATS_PASSWORD"]["valueFrom"] == {"secretKeyRef": {"name": "lifecycle-api", "key": "password"}}
    assert env["NATS_INBOX_PREFIX"]["value"] == "_INBOX_api"
    assert env["NATS_LIFECYCLE_SUBJECT"]["value"] == "tenants.{tenant}.lifecycle.{event}"


def test_servers_follow_the_upstream_chart_on_readiness_memory_and_advertising(seed_render):
    """nats-io/k8s tag nats-2.14.2, helm/charts/nats: readiness `/healthz?js-server-only=true`
    (files/stateful-set/nats-container.yaml), GOMEMLIMIT ~80 % of the memory limit in Go's
    units (README.md, "Should be ~80% of memory limit"), `cluster.noAdvertise: true` (values.yaml)."""
    (nats,) = [
        c
        for c in seed_render.get("StatefulSet", "lifecycle")["spec"]["template"]["spec"]["containers"]
        if c["name"] == "nats"
    ]
    assert nats["readinessProbe"]["httpGet"]["path"] == "/healthz?js-server-only=true"
    assert nats["livenessProbe"]["httpGet"]["path"] == "/healthz?js-enabled-only=true"
    assert nats["resources"]["limits"]["memory"] == "1Gi"
    assert {"name": "GOMEMLIMIT", "value": "819MiB"} in nats["env"]
    assert rendered_config(seed_render)["cluster"]["no_advertise"] is True


@pytest.mark.parametrize("quantity,mib", [("1Gi", 819), ("512Mi", 409), ("2G", 1525), ("1048576000", 800)])
def test_go_memory_limit(quantity, mib):
    assert meta.go_memory_limit(quantity) == {"name": "GOMEMLIMIT", "value": f"{mib}MiB"}


def test_memory_settings_must_be_quantities():
    with pytest.raises(InvalidInput) as info:
        parse_settings({"beacon": {"memoryLimit": "1 gig"}})
    assert [str(p) for p in info.value.problems] == [
        "beacon.memoryLimit: '1 gig' is not a memory quantity like '512Mi', '2Gi' or '1G'"
    ]
