"""The rendered nats-server configuration, checked by a real nats-server binary.

`nats-server -t` parses a config strictly (an unknown field or permission key is an error).
Then one server runs the single-server config on loopback, and the users' permissions are
exercised as rendered: nack creates the stream and consumers, api publishes an event,
billing pulls and acknowledges it, and every step outside a user's grant is refused.
The passwords are the render's deterministic stand-ins.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time

import nats
import pytest
from conftest import revealed, unavailable, variant
from nack_jetstream import consumer_config, stream_config

from components.beacon import inbox_prefix
from components.contracts import BrokerRef

BINARY = "nats-server"


def nats_server() -> str:
    found = shutil.which(BINARY) or (BINARY_PATH if os.path.exists(BINARY_PATH := "/usr/sbin/nats-server") else None)
    if not found:
        unavailable("no nats-server binary on this machine (Debian package nats-server)")
    return found


def config_of(rendered) -> dict:
    return json.loads(revealed(rendered.run.mocks.named("lifecycle-config").inputs["stringData"])["nats.conf"])


def edit_for(resiliencia: str, jetstream: bool):
    def edit(bp):
        bp["resiliencia"] = resiliencia
        next(r for r in bp["recursos"] if r["tipo"] == "beacon")["config"]["jetstream"] = jetstream

    return edit


@pytest.mark.parametrize("resiliencia", ["multi-zona", "zona-unica"])
@pytest.mark.parametrize("jetstream", [True, False])
def test_rendered_config_is_accepted_by_nats_server(render, tmp_path, resiliencia, jetstream):
    binary = nats_server()
    rendered = render(blueprint=variant(tmp_path, edit_for(resiliencia, jetstream)))
    path = tmp_path / "nats.conf"
    path.write_text(json.dumps(config_of(rendered)))
    result = subprocess.run(
        [binary, "-t", "-c", str(path), "--name", "lifecycle-0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout + result.stderr


def test_a_misspelt_permission_is_rejected(tmp_path):
    binary = nats_server()
    path = tmp_path / "bad.conf"
    path.write_text(
        json.dumps(
            {
                "accounts": {
                    "A": {"users": [{"user": "u", "password": "p", "permissions": {"publish": {"alow": ["x"]}}}]}
                }
            }
        )
    )
    assert subprocess.run([binary, "-t", "-c", str(path)], capture_output=True, timeout=30).returncode != 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def beacon_server(render, tmp_path):
    """One nats-server on loopback with the single-server JetStream config as rendered."""
    binary = nats_server()
    rendered = render(blueprint=variant(tmp_path, edit_for("zona-unica", True)))
    conf = config_of(rendered)
    port = free_port()
    # Only the pod's own addresses and paths move; users, permissions and limits stay as rendered.
    conf |= {"listen": f"127.0.0.1:{port}", "http": f"127.0.0.1:{free_port()}", "pid_file": str(tmp_path / "nats.pid")}
    conf["jetstream"]["store_dir"] = str(tmp_path / "store")
    path = tmp_path / "nats.conf"
    path.write_text(json.dumps(conf))
    proc = subprocess.Popen([binary, "-c", str(path), "--name", "lifecycle-0", "-l", str(tmp_path / "nats.log")])
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    log = (tmp_path / "nats.log").read_text() if (tmp_path / "nats.log").exists() else ""
                    pytest.fail(f"nats-server did not start with the rendered config:\n{log}")
                time.sleep(0.1)
        passwords = {u["user"]: u["password"] for u in conf["accounts"]["PLATFORM"]["users"]}
        yield f"nats://127.0.0.1:{port}", passwords, rendered
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def nack_credentials(rendered, kind: str, name: str) -> tuple[tuple[str, ...], str, str]:
    """(servers, user, password) NACK connects with for one rendered Stream or Consumer.

    nats-io/nack v0.22.4 (newest tag in the snapshot; controllers/ unchanged on main through
    f6dad09), controllers/jetstream/controller.go with `-crd-connect`: getAccountOverrides
    reads Account `spec.account` in the resource's own namespace, its `servers`, and the
    Secret `spec.user.secret.name` (same namespace) under the keys `spec.user.user` and
    `spec.user.password`; runWithJsmc connects to the spec's servers plus the Account's
    with that user and password, conn_pool.go with nats.go's default inbox prefix `_INBOX`.
    """
    obj = rendered.get(kind, name)
    namespace = obj["metadata"]["namespace"]
    account = rendered.get("Account", obj["spec"]["account"])
    assert account["metadata"]["namespace"] == namespace
    user = account["spec"]["user"]
    # The rendered manifests redact Secret data; the registered inputs hold what the API server stores.
    (secret,) = [
        revealed(r.inputs)
        for r in rendered.run.mocks.resources
        if r.inputs.get("kind") == "Secret" and r.inputs["metadata"]["name"] == user["secret"]["name"]
    ]
    assert secret["metadata"]["namespace"] == namespace
    data = secret["stringData"]
    return (*obj["spec"].get("servers", []), *account["spec"]["servers"]), data[user["user"]], data[user["password"]]


def test_nack_creates_the_stream_and_consumers_with_the_account_it_is_given(beacon_server):
    """The blocker this guards: NACK must authenticate, as the rendered Account says, and that
    user's grant in the rendered server config must be enough to create what is rendered."""
    url, _, rendered = beacon_server
    stream_spec = rendered.get("Stream", "tenant-lifecycle")["spec"]
    wanted = {("Stream", "tenant-lifecycle")} | {("Consumer", f"lifecycle-{d}") for d in ("billing", "crm")}
    logins = {key: nack_credentials(rendered, *key) for key in wanted}
    servers, user, password = logins[("Stream", "tenant-lifecycle")]
    assert servers == (BrokerRef("lifecycle", "saas-net").url,) and len(set(logins.values())) == 1

    async def scenario():
        # Only the address moves to the loopback server; user, password and inbox are NACK's.
        nc = await asyncio.wait_for(
            nats.connect(url, user=user, password=password, allow_reconnect=False, connect_timeout=2), 10
        )
        try:
            js = nc.jetstream()
            created = await js.add_stream(stream_config(stream_spec))
            durable = [
                await js.add_consumer(*consumer_config(rendered.get("Consumer", f"lifecycle-{d}")["spec"]))
                for d in ("billing", "crm")
            ]
            return created, durable
        finally:
            await nc.close()

    created, durable = asyncio.run(scenario())
    assert created.config.name == "tenant-lifecycle" and created.config.subjects == stream_spec["subjects"]
    assert [c.name for c in durable] == ["billing", "crm"]

    async def anonymous():
        # What NACK did with `-s=<url>`: one connection with no user; the server must refuse it.
        return await asyncio.wait_for(nats.connect(url, allow_reconnect=False, connect_timeout=2), 10)

    with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
        asyncio.run(anonymous())


def test_users_can_do_what_they_must_and_nothing_else(beacon_server):
    url, passwords, rendered = beacon_server
    stream_spec = rendered.get("Stream", "tenant-lifecycle")["spec"]
    consumer_specs = [rendered.get("Consumer", f"lifecycle-{d}")["spec"] for d in ("billing", "crm")]
    event = BrokerRef.lifecycle_subject("acme", "plan_changed")

    async def scenario():
        refused: dict[str, list[str]] = {}

        async def connect(user):
            async def on_error(exc):
                refused.setdefault(user, []).append(str(exc))

            prefix = inbox_prefix(user) if user != "nack" else "_INBOX"
            return await asyncio.wait_for(
                nats.connect(
                    url,
                    user=user,
                    password=passwords[user],
                    inbox_prefix=prefix,
                    error_cb=on_error,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    connect_timeout=2,
                ),
                10,
            )

        nack, api, billing = await connect("nack"), await connect("api"), await connect("billing")
        try:
            # nack: the JetStream API, as the NACK controller uses it.
            njs = nack.jetstream()
            await njs.add_stream(stream_config(stream_spec))
            for spec in consumer_specs:
                await njs.add_consumer(*consumer_config(spec))

            # api: publishes a lifecycle event and gets the stream's ack on its own inbox.
            ack = await api.jetstream().publish(event, b"enterprise")
            # ...but may not listen to events nor touch the JetStream API.
            await api.subscribe("tenants.>")
            await api.publish("$JS.API.STREAM.DELETE.tenant-lifecycle", b"")
            await api.flush()

            # billing: pulls from its own durable consumer and acknowledges.
            bjs = billing.jetstream()
            (msg,) = await (await bjs.pull_subscribe_bind("billing", "tenant-lifecycle")).fetch(1, timeout=5)
            await msg.ack_sync()
            # ...but may not publish events nor read crm's consumer.
            await billing.publish(event, b"forged")
            with pytest.raises(nats.errors.TimeoutError):
                await (await bjs.pull_subscribe_bind("crm", "tenant-lifecycle")).fetch(1, timeout=1)
            await billing.flush()
            await asyncio.sleep(0.2)
            info = await njs.stream_info("tenant-lifecycle")
            return ack, msg, info, refused
        finally:
            for nc in (nack, api, billing):
                await nc.close()

    ack, msg, info, refused = asyncio.run(scenario())
    assert ack.stream == "tenant-lifecycle" and ack.seq == 1
    assert msg.subject == event and msg.data == b"enterprise"
    assert info.state.messages == 1  # the forged event never reached the stream
    # nats-py reports the server's -ERR lowercased.
    api_refusals = " ".join(refused.get("api", []))
    assert 'violation for subscription to "tenants.>"' in api_refusals
    assert 'violation for publish to "$js.api.stream.delete.tenant-lifecycle"' in api_refusals
    billing_refusals = " ".join(refused.get("billing", []))
    assert f'violation for publish to "{event}"' in billing_refusals
    assert 'violation for publish to "$js.api.consumer.msg.next.tenant-lifecycle.crm"' in billing_refusals
    assert "nack" not in refused


def test_consumers_may_ack_in_both_reply_formats(beacon_server):
    """Ack replies come as `$JS.ACK.<stream>.<consumer>.…` (9 tokens) or, with a domain and
    account hash, `$JS.ACK.<domain>.<account>.<stream>.<consumer>.…` (12 tokens; nats-io/nats.go
    internal/parser/parse.go). billing may send either for its own consumer, never for crm's."""
    url, passwords, _ = beacon_server
    own = [
        "$JS.ACK.tenant-lifecycle.billing.1.1.1.1700000000.0",
        "$JS.ACK.hub.ACC.tenant-lifecycle.billing.1.1.1.1700000000.0.tok",
    ]
    other = "$JS.ACK.hub.ACC.tenant-lifecycle.crm.1.1.1.1700000000.0.tok"

    async def scenario():
        refused: list[str] = []

        async def on_error(exc):
            refused.append(str(exc))

        nc = await asyncio.wait_for(
            nats.connect(
                url,
                user="billing",
                password=passwords["billing"],
                inbox_prefix=inbox_prefix("billing"),
                error_cb=on_error,
                allow_reconnect=False,
                connect_timeout=2,
            ),
            10,
        )
        try:
            for subject in [*own, other]:
                await nc.publish(subject, b"+ACK")
            await nc.flush()
            await asyncio.sleep(0.2)
        finally:
            await nc.close()
        return " ".join(refused)

    refused = asyncio.run(scenario())
    assert all(subject.lower() not in refused for subject in own)
    assert f'violation for publish to "{other.lower()}"' in refused
