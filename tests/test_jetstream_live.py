"""The rendered NACK Stream and Consumers, tried on the real JetStream server at 127.0.0.1:4222.

That server (the machine's NATS with JetStream, no auth, not clustered) must accept the
stream and consumer configuration exactly as rendered for a single-server blueprint; an
event published for a tenant must reach the billing durable consumer and be acknowledged.
Each run uses its own stream name and subject prefix and deletes its stream afterwards.
"""

import asyncio
import uuid

import nats
import pytest
from conftest import TEST_NATS_URL, unavailable, variant
from nack_jetstream import consumer_config, go_duration_seconds, stream_config
from nats.js.api import AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType

from components.contracts import BrokerRef

SERVER = TEST_NATS_URL


@pytest.mark.parametrize(
    "text,seconds", [("2160h", 2160 * 3600.0), ("1h30m", 5400.0), ("2m", 120.0), ("500ms", 0.5), ("30s", 30.0)]
)
def test_go_durations(text, seconds):
    assert go_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "30d", "1h 30m", "h", "-5s"])
def test_not_go_durations(text):
    with pytest.raises(ValueError):
        go_duration_seconds(text)


def test_translation_of_the_seed_specs(seed_render):
    cfg = stream_config(seed_render.get("Stream", "tenant-lifecycle")["spec"])
    assert cfg.name == "tenant-lifecycle" and cfg.subjects[0] == "tenants.*.lifecycle.signup"
    assert (cfg.retention, cfg.storage, cfg.discard) == (RetentionPolicy.LIMITS, StorageType.FILE, DiscardPolicy.OLD)
    assert (
        cfg.num_replicas == 3
        and cfg.max_age == 2160 * 3600.0
        and cfg.max_bytes == 5 * 1024**3
        and cfg.duplicate_window == 120.0
    )
    stream, consumer = consumer_config(seed_render.get("Consumer", "lifecycle-billing")["spec"])
    assert stream == "tenant-lifecycle"
    assert (consumer.durable_name, consumer.ack_policy, consumer.deliver_policy) == (
        "billing",
        AckPolicy.EXPLICIT,
        DeliverPolicy.ALL,
    )
    assert consumer.ack_wait == 30.0 and consumer.max_deliver == 20 and consumer.max_ack_pending == 1000


def test_unknown_spec_keys_are_not_dropped_silently():
    with pytest.raises(ValueError, match="sealed"):
        stream_config({"name": "s", "subjects": ["a"], "sealed": True})
    assert stream_config({"name": "s", "subjects": ["a"], "account": "x", "preventDelete": True}).name == "s"


async def _connect():
    # One attempt, bounded: nats-py retries an unreachable server forever with max_reconnect_attempts=0.
    try:
        return await asyncio.wait_for(
            nats.connect(SERVER, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1), 10
        )
    except Exception as exc:
        return exc


def test_rendered_stream_and_billing_consumer_on_a_real_server(render, tmp_path):
    rendered = render(blueprint=variant(tmp_path, lambda bp: bp.update(resiliencia="zona-unica")))
    stream_spec = rendered.get("Stream", "tenant-lifecycle")["spec"]
    consumer_specs = [rendered.get("Consumer", f"lifecycle-{d}")["spec"] for d in ("billing", "crm")]
    run = uuid.uuid4().hex[:10]

    async def scenario():
        nc = await _connect()
        if isinstance(nc, Exception):
            return nc
        js = nc.jetstream()
        cfg = stream_config(stream_spec)
        # Unique per run: a stream's subjects may not overlap another stream's on the same server.
        cfg.name = f"{cfg.name}-{run}"
        cfg.subjects = [f"run-{run}.{s}" for s in cfg.subjects]
        try:
            info = await js.add_stream(cfg)
            try:
                consumers = {}
                for spec in consumer_specs:
                    stream, consumer = consumer_config(spec)
                    assert stream == stream_spec["name"]
                    consumers[consumer.durable_name] = await js.add_consumer(cfg.name, consumer)

                subject = f"run-{run}." + BrokerRef.lifecycle_subject("acme", "signup")
                ack = await js.publish(
                    subject, b'{"tenant": "acme", "plan": "business"}', headers={"Nats-Msg-Id": f"acme-signup-{run}"}
                )
                sub = await js.pull_subscribe_bind("billing", cfg.name)
                (msg,) = await sub.fetch(1, timeout=5)
                await msg.ack_sync()
                billing = await js.consumer_info(cfg.name, "billing")
                crm = await js.consumer_info(cfg.name, "crm")
                return info, consumers, ack, msg, billing, crm
            finally:
                await js.delete_stream(cfg.name)
        finally:
            await nc.close()

    result = asyncio.run(scenario())
    if isinstance(result, Exception):
        unavailable(f"no NATS JetStream server at {SERVER} ({result!r})")
    info, consumers, ack, msg, billing, crm = result
    # The server kept the limits as rendered.
    assert (
        info.config.max_age == go_duration_seconds(stream_spec["maxAge"])
        and info.config.max_bytes == stream_spec["maxBytes"]
    )
    assert info.config.storage == StorageType.FILE and info.config.num_replicas == 1
    assert (
        consumers["billing"].config.ack_policy == AckPolicy.EXPLICIT
        and consumers["billing"].config.durable_name == "billing"
    )
    assert ack.seq == 1
    assert (
        msg.subject.endswith("tenants.acme.lifecycle.signup") and msg.data == b'{"tenant": "acme", "plan": "business"}'
    )
    assert msg.metadata.sequence.stream == 1 and msg.metadata.num_delivered == 1
    # billing acknowledged its copy; crm's durable consumer still holds the event for itself.
    assert billing.num_ack_pending == 0 and billing.ack_floor.stream_seq == 1
    assert crm.num_pending == 1
