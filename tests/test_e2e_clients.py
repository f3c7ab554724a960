"""The end-to-end check's protocol clients, against the real local PostgreSQL and NATS JetStream.

They run when CI=true (and fail if the services are unreachable); elsewhere they skip when
the services aren't there.
"""

import asyncio
import http.server
import socket
import threading
import uuid

import nats
import pytest
from conftest import TEST_DSN, TEST_NATS_URL, unavailable
from e2e.clients import get, jetstream_roundtrip, pooled_identity

PG_DSN, NATS_URL = TEST_DSN, TEST_NATS_URL


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def require(host: str, port: int, what: str):
    if not reachable(host, port):
        unavailable(f"{what} not reachable on {host}:{port}")


def test_pooled_identity_survives_consecutive_transactions():
    require("127.0.0.1", 5432, "PostgreSQL")
    assert pooled_identity(PG_DSN) == ("postgres", "test")


def test_jetstream_roundtrip_reads_back_what_it_published():
    require("127.0.0.1", 4222, "NATS")
    prefix = f"e2e{uuid.uuid4().hex[:8]}"

    async def scenario():
        nc = await nats.connect(NATS_URL)
        js = nc.jetstream()
        await js.add_stream(name=prefix, subjects=[f"{prefix}.>"], storage="memory")
        try:
            return await jetstream_roundtrip(
                NATS_URL, f"{prefix}.tenants.acme.lifecycle.signup", b'{"event": "signup"}'
            )
        finally:
            await js.delete_stream(prefix)
            await nc.close()

    stream, seq, data = asyncio.run(scenario())
    assert (stream, seq, data) == (prefix, 1, b'{"event": "signup"}')


def test_jetstream_roundtrip_fails_when_no_stream_captures_the_subject():
    require("127.0.0.1", 4222, "NATS")
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        asyncio.run(jetstream_roundtrip(NATS_URL, f"nowhere{uuid.uuid4().hex[:8]}.x", b"x"))


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"Host: {self.headers['Host']}\npath: {self.path}\n".encode()
        self.send_response(403 if "OR" in self.path else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_get_sends_the_tenant_host_to_the_edge_address():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert get("acme.app.acme.io", "/", tls=False, port=port) == (200, "Host: acme.app.acme.io\npath: /\n")
        status, body = get("acme.app.acme.io", "/?id=1%27%20OR%20%271%27%3D%271", tls=False, port=port)
        assert status == 403 and "id=1%27%20OR" in body
    finally:
        server.shutdown()
