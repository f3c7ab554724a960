"""NACK `Stream`/`Consumer` specs → the JetStream API configs a NATS client sends.

This is what the NACK controller does with the custom resources on a cluster; here it
lets the tests hand the rendered specs to a real JetStream server. A spec key this module
does not know is an error, so a field added to the rendered specs cannot be silently left
out of the real-server test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    ReplayPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

# Where NACK connects and what it does with the resource; not part of the JetStream config.
NACK_ONLY = frozenset(
    {"account", "creds", "nkey", "servers", "tls", "tlsFirst", "jsDomain", "preventDelete", "preventUpdate"}
)
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float:
    """Go's time.ParseDuration for the unsigned forms NACK accepts ('720h', '1h30m', '500ms')."""
    parts = GO_DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * GO_UNITS[u] for n, u in parts)


DELIVER = {
    "all": DeliverPolicy.ALL,
    "last": DeliverPolicy.LAST,
    "new": DeliverPolicy.NEW,
    "byStartSequence": DeliverPolicy.BY_START_SEQUENCE,
    "byStartTime": DeliverPolicy.BY_START_TIME,
    "lastPerSubject": DeliverPolicy.LAST_PER_SUBJECT,
}

STREAM_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "name": ("name", str),
    "description": ("description", str),
    "subjects": ("subjects", list),
    "retention": ("retention", RetentionPolicy),
    "storage": ("storage", StorageType),
    "replicas": ("num_replicas", int),
    "maxAge": ("max_age", go_duration_seconds),
    "maxBytes": ("max_bytes", int),
    "maxMsgs": ("max_msgs", int),
    "maxMsgSize": ("max_msg_size", int),
    "maxConsumers": ("max_consumers", int),
    "discard": ("discard", DiscardPolicy),
    "duplicateWindow": ("duplicate_window", go_duration_seconds),
    "denyDelete": ("deny_delete", bool),
    "denyPurge": ("deny_purge", bool),
}

CONSUMER_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "durableName": ("durable_name", str),
    "description": ("description", str),
    "deliverPolicy": ("deliver_policy", DELIVER.__getitem__),
    "ackPolicy": ("ack_policy", AckPolicy),
    "ackWait": ("ack_wait", go_duration_seconds),
    "maxDeliver": ("max_deliver", int),
    "maxAckPending": ("max_ack_pending", int),
    "replayPolicy": ("replay_policy", ReplayPolicy),
    "filterSubject": ("filter_subject", str),
    "replicas": ("num_replicas", int),
}


def _translate(spec: Mapping[str, Any], fields: Mapping[str, tuple[str, Callable]], skip: frozenset) -> dict:
    unknown = sorted(set(spec) - set(fields) - NACK_ONLY - skip)
    if unknown:
        raise ValueError(f"no JetStream translation for spec keys: {', '.join(unknown)}")
    return {fields[k][0]: fields[k][1](v) for k, v in spec.items() if k in fields}


def stream_config(spec: Mapping[str, Any]) -> StreamConfig:
    return StreamConfig(**_translate(spec, STREAM_FIELDS, frozenset()))


def consumer_config(spec: Mapping[str, Any]) -> tuple[str, ConsumerConfig]:
    """(stream name, consumer config): NACK names the stream in the spec, the API in the request subject."""
    return spec["streamName"], ConsumerConfig(**_translate(spec, CONSUMER_FIELDS, frozenset({"streamName"})))
