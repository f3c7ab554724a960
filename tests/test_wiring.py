"""The computes get the archive's and the beacon's coordinates, and credentials only through Secrets."""

import json

from conftest import revealed

from components.archive import compute_env as archive_env
from components.beacon import compute_env as beacon_env
from components.contracts import BrokerRef, ObjectStoreRef
from components.datastore import tenant_password
from components.render import _is_k8s_object, stand_in


def test_every_compute_gets_archive_then_beacon_then_database_env(seed_render):
    expected = [
        {"name": "PORT", "value": "8080"},
        *archive_env(ObjectStoreRef("tenant-files", "saas-net")),
        *beacon_env(BrokerRef("lifecycle", "saas-net")),
    ]
    for name in ("tenant-api", "admin-ui"):
        (container,) = seed_render.get("Deployment", name)["spec"]["template"]["spec"]["containers"]
        assert container["env"][: len(expected)] == expected
        assert [e["name"][:2] for e in container["env"][len(expected) :]] == ["PG"] * (
            len(container["env"]) - len(expected)
        )


def test_credentials_in_env_come_from_secrets_only(seed_render):
    secret_names = seed_render.names("Secret")
    for dep in seed_render.kind("Deployment"):
        for env in dep["spec"]["template"]["spec"]["containers"][0]["env"]:
            if any(word in env["name"] for word in ("KEY", "PASSWORD", "USER", "SECRET")):
                assert set(env) == {"name", "valueFrom"}, env
                assert env["valueFrom"]["secretKeyRef"]["name"] in secret_names


def test_generated_values_appear_in_secrets_only(seed_render):
    mocks = seed_render.run.mocks
    generated = mocks.of_type("random:index/randomPassword:RandomPassword")
    assert (
        len(generated) == 4 + 5 + 3
    )  # archive: 2 key pairs; beacon: 4 users + routes; datastore: router, migrator, enterprise logins' master
    values = {stand_in(r.name, int(r.inputs["length"])) for r in generated}
    # Derived from the master, so generated too: enterprise acme's login.
    values.add(tenant_password(stand_in("platform-db-tenant-logins-master", 32), "acme", 0))
    holders = set()
    for r in mocks.resources:
        if not _is_k8s_object(r):
            continue
        text = json.dumps(revealed(r.inputs))
        if any(v in text for v in values):
            holders.add((r.inputs["kind"], r.inputs["metadata"]["name"]))
            assert "stringData" in r.inputs and r.inputs["stringData"] != revealed(r.inputs["stringData"]), r.name
    assert {kind for kind, _ in holders} == {"Secret"}
    assert ("Secret", "lifecycle-config") in holders and ("Secret", "tenant-files-s3-config") in holders
    assert {("Secret", "platform-db-tenant-acme"), ("Secret", "platform-db-tenant-logins")} <= holders
