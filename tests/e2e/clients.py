"""Protocol clients of the end-to-end check: HTTPS through the local edge, PostgreSQL, JetStream."""

from __future__ import annotations

import http.client
import socket
import ssl

import nats
import psycopg


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `address` while TLS (SNI, certificate check) and Host use the tenant's name."""

    def __init__(self, host: str, address: str, port: int, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, context=context, timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def get(
    host: str,
    path: str = "/",
    address: str = "127.0.0.1",
    tls: bool = True,
    cafile: str | None = None,
    port: int | None = None,
    timeout: float = 15,
) -> tuple[int, str]:
    """GET `path` on `host` through the edge at `address`; returns (status, body)."""
    if tls:
        conn: http.client.HTTPConnection = _PinnedHTTPS(
            host, address, port or 443, ssl.create_default_context(cafile=cafile), timeout
        )
    else:
        conn = http.client.HTTPConnection(address, port or 80, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def pooled_identity(dsn: str) -> tuple[str, str]:
    """(current_user, current_database) over two transactions of one connection.

    No server-side prepared statements: PgBouncer in transaction mode may hand each
    transaction to another server connection.
    """
    with psycopg.connect(dsn, connect_timeout=10, prepare_threshold=None) as conn:
        for _ in range(2):
            with conn.transaction():
                user, db = conn.execute("select current_user, current_database()").fetchone()
    return user, db


async def _connect(url: str, login: tuple[str, str, str] | None):
    user, password, inbox = login or (None, None, "_INBOX")
    return await nats.connect(
        url, user=user, password=password, inbox_prefix=inbox, connect_timeout=10, allow_reconnect=False
    )


async def jetstream_roundtrip(
    url: str,
    subject: str,
    payload: bytes,
    publisher: tuple[str, str, str] | None = None,
    reader: tuple[str, str, str] | None = None,
) -> tuple[str, int, bytes]:
    """Publish to `subject` through JetStream as `publisher`, read the stored message back by
    sequence as `reader` (each `(user, password, inbox prefix)`, or anonymous).

    The Beacon's publisher may only publish events and its readers only pull their own
    consumer, so the read-back goes through a user with the JetStream API (NACK's). The
    PubAck names the stream that captured the subject, so no stream name is assumed.
    """
    nc = await _connect(url, publisher)
    try:
        ack = await nc.jetstream(timeout=10).publish(subject, payload)
    finally:
        await nc.close()
    nc = await _connect(url, reader)
    try:
        stored = await nc.jetstream(timeout=10).get_msg(ack.stream, ack.seq)
        return ack.stream, ack.seq, stored.data
    finally:
        await nc.close()
