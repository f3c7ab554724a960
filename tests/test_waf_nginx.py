"""The WAF's nginx server (components/wafconfig.py), run by a real nginx with ModSecurity-nginx.

Debian's `nginx` (1.22) and `libnginx-mod-http-modsecurity` (ModSecurity-nginx 1.0.3 on
libmodsecurity 3.0.9) run the server block exactly as rendered, in front of a Python upstream
that records what it receives; only the listen port and the body temp path are moved into the
test's directory. The image runs nginx 1.30.4 with ModSecurity-nginx 1.0.4 and libmodsecurity
3.0.16 (modsecurity-crs-docker docker-bake.hcl at release/20260804); every directive used here
is older than nginx 1.22. `.ci/run` installs both packages, so CI=true fails without them.

ModSecurity-nginx reads the client address in its NGX_HTTP_REWRITE_PHASE handler
(src/ngx_http_modsecurity_module.c, src/ngx_http_modsecurity_rewrite.c: `connection->addr_text`
to msc_process_connection), so the audit record's `client_ip` shows whether real-IP ran first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import unavailable
from test_sentinel import args_for

from components import wafconfig

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
MODULE = Path("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so")
# The per-tenant counters need njs >= 0.8.0 (js_shared_dict_zone); the image has njs 1.0.0
# (nginx/docker-nginx-unprivileged stable/debian/Dockerfile at e26803b: nginx-module-njs
# 1.30.4+1.0.0). Debian bookworm ships njs 0.7.9 and no registry ships a newer module for its
# nginx 1.22, so B2B_NJS_MODULE names one built from nginx/njs at tag 1.0.0 against Debian's
# `nginx-dev` (docs/layers/sentinel.md says how). Without it the server runs with a stand-in that
# logs every request, and the counter tests skip.
PROMTOOL = shutil.which("promtool")
NJS = Path(os.environ["B2B_NJS_MODULE"]) if os.environ.get("B2B_NJS_MODULE") else None
NJS_STAND_IN = 'map "" $b2b_counted {\n    default 1;\n}\n'
CLIENT = "203.0.113.9"
# The seed's api compute (tenant-api, replicas_min 3) behind edge-waf, gateway base app.acme.io.
TENANTS = {
    "tenants": [
        {"id": "acme", "plan": "business", "isolation": "schema", "domains": ["portal.acme-corp.com"]},
        {"id": "globex", "plan": "enterprise", "isolation": "rls"},
    ]
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/slow":
            time.sleep(1)
        Upstream.seen.append(
            {"path": self.path, "headers": dict(self.headers), "fields": self.headers.items(), "body": len(body)}
        )
        payload = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def waf(tmp_path):
    """start(cfg) → the port of a running nginx serving wafconfig.nginx_server(cfg)."""
    if not NGINX or not MODULE.exists():
        unavailable("nginx with ModSecurity-nginx not installed (Debian `nginx libnginx-mod-http-modsecurity`)")
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    Upstream.seen = []
    procs = []

    def start(config: dict | None = None, **changes) -> int:
        base = args_for(TENANTS if config is None else config).waf
        cfg = dataclasses.replace(base, backend=f"http://127.0.0.1:{upstream.server_port}", **changes)
        port = free_port()
        (tmp_path / "body").mkdir(exist_ok=True)
        server = (
            wafconfig.nginx_server(cfg)
            .replace(f"listen {wafconfig.PORT} ", f"listen 127.0.0.1:{port} ")
            .replace(f"{wafconfig.BODY_TEMP_DIR}/client_temp", str(tmp_path / "body"))
            .replace(f"access_log {wafconfig.ACCESS_LOG} ", f"access_log {tmp_path}/access.log ")
        )
        (tmp_path / "server.conf").write_text(server)
        counters = ""
        if cfg.tenants and NJS:
            metrics_port = free_port()
            start.metrics_port = metrics_port  # type: ignore[attr-defined]  # for scrape()
            (tmp_path / "b2b_edge.js").write_text(wafconfig.edge_js())
            counters = (
                wafconfig.edge_metrics(cfg.tenants)
                .replace(f"listen {wafconfig.METRICS_PORT};", f"listen 127.0.0.1:{metrics_port};")
                .replace(wafconfig.EDGE_JS, str(tmp_path / "b2b_edge.js"))
            )
        elif cfg.tenants:
            counters = NJS_STAND_IN
        (tmp_path / "counters.conf").write_text(counters)
        # The image's conf.d order (b2b-edge-metrics.conf, default.conf); the stand-in's `map`
        # goes last, after the server's map_hash sizes.
        files = ["counters.conf", "server.conf"] if NJS else ["server.conf", "counters.conf"]
        includes = " ".join(f"include {tmp_path / f};" for f in files)
        (tmp_path / "nginx.conf").write_text(f"""
load_module {MODULE};
{f"load_module {NJS};" if NJS else ""}
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    proxy_temp_path {tmp_path}/proxy;
    modsecurity on;
    modsecurity_rules '
        SecRuleEngine On
        SecAuditEngine On
        SecAuditLogFormat JSON
        SecAuditLogType Serial
        SecAuditLogParts ABZ
        SecAuditLog {tmp_path}/audit.log
    ';
    {includes}
}}
""")
        check = subprocess.run(
            [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True
        )
        assert check.returncode == 0, check.stderr.decode()
        proc = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off; user root;"],
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                start.proc = proc  # type: ignore[attr-defined]  # the newest nginx, for signal tests
                return port
            except OSError:
                time.sleep(0.05)
        raise AssertionError((tmp_path / "error.log").read_text())

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
    upstream.shutdown()


def send(port: int, request: bytes, hold: float = 0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        if hold:
            time.sleep(hold)
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def get(path: str, headers: dict, body: bytes = b"", method: str = "GET") -> bytes:
    head = {"Host": "acme.app.acme.io", "Connection": "close", **headers}
    if body:
        head["Content-Length"] = str(len(body))
    lines = "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return f"{method} {path} HTTP/1.1\r\n{lines}\r\n".encode() + body


EDGE = {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443"}


def test_the_api_gets_the_edges_scheme_port_and_the_real_client(waf, tmp_path):
    """Image template proxy_backend.conf sends X-Forwarded-Proto $scheme (http) and
    X-Forwarded-Port $server_port (8080); the API must see what the client used at the edge."""
    port = waf(trusted_proxies=("127.0.0.0/8",))
    reply = send(port, get("/v1/users", EDGE))
    assert reply.startswith(b"HTTP/1.1 200")
    (seen,) = Upstream.seen
    h = seen["headers"]
    assert (h["X-Forwarded-Proto"], h["X-Forwarded-Port"], h["Host"]) == ("https", "443", "acme.app.acme.io")
    assert h["X-Real-IP"] == CLIENT
    assert h["X-Forwarded-For"] == f"{CLIENT}, 127.0.0.1"


def test_modsecurity_sees_the_real_client(waf, tmp_path):
    """Real-IP at server level runs in nginx's post-read phase, before ModSecurity-nginx's rewrite
    handler: the audit record names the client, not the edge controller's pod."""
    port = waf(trusted_proxies=("127.0.0.0/8",))
    send(port, get("/v1/users", EDGE))
    time.sleep(0.2)
    records = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines() if line.strip()]
    assert [r["transaction"]["client_ip"] for r in records] == [CLIENT]


def test_forwarded_headers_from_untrusted_sources_are_ignored(waf):
    port = waf(trusted_proxies=("10.0.0.0/8",))
    send(port, get("/v1/users", EDGE))
    (seen,) = Upstream.seen
    assert seen["headers"]["X-Real-IP"] == "127.0.0.1"


def test_an_oversized_upload_is_refused_before_it_is_buffered(waf, tmp_path):
    """The image's `client_max_body_size 0` let any body be buffered to /var/cache/nginx."""
    port = waf(max_body_mb=1)
    reply = send(port, get("/v1/files", {"Content-Type": "application/octet-stream"}, b"x" * (1024 * 1024 + 1), "PUT"))
    assert reply.startswith(b"HTTP/1.1 413")
    assert Upstream.seen == [] and list((tmp_path / "body").iterdir()) == []
    ok = send(port, get("/v1/files", {"Content-Type": "application/octet-stream"}, b"x" * 200_000, "PUT"))
    assert ok.startswith(b"HTTP/1.1 200") and Upstream.seen[0]["body"] == 200_000


def test_no_cors_headers_and_health_is_answered_by_nginx(waf):
    """The image's includes/cors.conf.template adds Access-Control-Allow-Headers to every
    response: CORS is the API's decision. /healthz never reaches the backend."""
    port = waf()
    reply = send(port, get("/v1/users", {"Origin": "https://evil.example"}))
    assert reply.startswith(b"HTTP/1.1 200") and b"access-control-" not in reply.lower()
    health = send(port, get("/healthz", {"Host": "10.244.1.7:8080"}))
    assert health.startswith(b"HTTP/1.1 200") and health.endswith(b"OK")
    assert [s["path"] for s in Upstream.seen] == ["/v1/users"]


# --- tenant resolution and rate limits (issue 19) ---------------------------------------------


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_a_tenant_host_reaches_the_api_with_its_tenant_header(waf):
    port = waf()
    for host in ("acme.app.acme.io", "ACME.app.acme.io:443", "acme.app.acme.io.", "portal.acme-corp.com"):
        assert status(send(port, get("/v1/users", {"Host": host}))) == 200, host
    assert status(send(port, get("/v1/users", {"Host": "globex.app.acme.io"}))) == 200
    assert [s["headers"]["X-Tenant-Id"] for s in Upstream.seen] == ["acme"] * 4 + ["globex"]
    # The API still gets the Host the client asked for.
    assert Upstream.seen[3]["headers"]["Host"] == "portal.acme-corp.com"


def test_a_previous_base_domain_still_reaches_each_tenant(waf):
    """A domain migration (edge.previousDomains, docs/layers/gateway.md): old hosts keep their tenant."""
    port = waf({**TENANTS, "edge": {"previousDomains": ["app.old-acme.io"]}})
    for host in ("acme.app.old-acme.io", "globex.app.old-acme.io", "acme.app.acme.io", "portal.acme-corp.com"):
        assert status(send(port, get("/v1/users", {"Host": host}))) == 200, host
    assert [s["headers"]["X-Tenant-Id"] for s in Upstream.seen] == ["acme", "globex", "acme", "acme"]
    # Only tenants' hosts: an unknown name under the old domain is still nobody's.
    assert status(send(port, get("/v1/users", {"Host": "hooli.app.old-acme.io"}))) == 404


def test_a_client_supplied_tenant_header_is_replaced_never_trusted(waf):
    port = waf()
    spoof = get("/v1/users", {"X-Tenant-Id": "globex"})
    # Another case, a second copy, and the underscore spelling CGI/WSGI servers read as the same name.
    spoof = spoof.replace(b"\r\n\r\n", b"\r\nx-tenant-id: globex\r\nX_Tenant_Id: globex\r\n\r\n")
    assert status(send(port, spoof)) == 200
    (seen,) = Upstream.seen
    tenant_fields = [(k, v) for k, v in seen["fields"] if k.lower().replace("_", "-") == "x-tenant-id"]
    assert tenant_fields == [("X-Tenant-Id", "acme")]


def test_the_header_name_comes_from_stack_config(waf):
    port = waf({**TENANTS, "sentinel": {"tenantHeader": "X-Org"}})
    send(port, get("/v1/users", {"X-Org": "globex", "X-Tenant-Id": "globex"}))
    (seen,) = Upstream.seen
    assert seen["headers"]["X-Org"] == "acme"
    assert seen["headers"]["X-Tenant-Id"] == "globex"  # just another client header now


def test_an_unknown_host_gets_404_and_the_api_sees_nothing(waf):
    port = waf()
    for host in ("initech.app.acme.io", "app.acme.io", "admin-ui.app.acme.io", "evil.example", "10.244.1.7:8080"):
        assert status(send(port, get("/v1/users", {"Host": host}))) == 404, host
    # HTTP/1.0 without Host: no tenant either.
    assert status(send(port, b"GET /v1/users HTTP/1.0\r\n\r\n")) == 404
    assert Upstream.seen == []
    # The kubelet's probe (numeric Host) is still answered.
    assert status(send(port, get("/healthz", {"Host": "10.244.1.7:8080"}))) == 200


def test_no_tenants_configured_means_every_host_is_unknown(waf):
    port = waf({})
    assert status(send(port, get("/v1/users", {}))) == 404 and Upstream.seen == []


def test_a_tenant_over_its_limit_gets_429_while_another_passes(waf):
    """acme: 3 r/s burst 3 over the WAF's floor of 3 pods → 60 r/m burst 1 in this pod."""
    port = waf({**TENANTS, "sentinel": {"tenantRateLimits": {"acme": {"requestsPerSecond": 3, "burst": 3}}}})
    replies = [send(port, get("/v1/users", {})) for _ in range(5)]
    assert [status(r) for r in replies] == [200, 200, 429, 429, 429]
    head, _, body = replies[-1].partition(b"\r\n\r\n")
    assert b"\r\nRetry-After: 1\r\n" in head + b"\r\n" and b"application/problem+json" in head
    assert json.loads(body) == {"title": "Too Many Requests", "status": 429}
    # globex (enterprise: 200 r/s burst 400 → 4000 r/m burst 134 per pod) is untouched.
    others = [send(port, get("/v1/users", {"Host": "globex.app.acme.io"})) for _ in range(20)]
    assert {status(r) for r in others} == {200}
    # Keyed by tenant, not by address: acme's custom domain shares acme's counter.
    assert status(send(port, get("/v1/users", {"Host": "portal.acme-corp.com"}))) == 429
    assert [s["headers"]["X-Tenant-Id"] for s in Upstream.seen] == ["acme"] * 2 + ["globex"] * 20


def test_retry_after_is_the_time_one_request_takes_to_free(waf):
    """1 r/s over 3 pods is 20 r/m per pod: the next request is admitted after 3 s."""
    port = waf({**TENANTS, "sentinel": {"rateLimits": {"business": {"requestsPerSecond": 1, "burst": 0}}}})
    first, second = (send(port, get("/v1/users", {})) for _ in range(2))
    assert (status(first), status(second)) == (200, 429)
    assert b"\r\nRetry-After: 3\r\n" in second


def test_thousands_of_tenants_with_long_domains_load(waf):
    """nginx refuses to start when a map's hash buckets cannot hold its longest key."""
    long = ".".join(["d" * 60] * 4)[:240]
    tenants = [
        {"id": f"t{i}", "plan": "business", "isolation": "schema", "domains": [f"x{i}.{long}"[:253]]}
        for i in range(5000)
    ]
    port = waf({"tenants": tenants, "sentinel": {"tenantRateLimits": {"t7": {"requestsPerSecond": 9}}}})
    assert status(send(port, get("/v1/users", {"Host": f"x4999.{long}"[:253]}))) == 200
    assert status(send(port, get("/v1/users", {"Host": "t7.app.acme.io"}))) == 200
    assert [s["headers"]["X-Tenant-Id"] for s in Upstream.seen] == ["t4999", "t7"]


def test_a_stopping_waf_finishes_the_requests_it_holds(waf):
    """A changed map rolls the pods; the kubelet stops nginx with the image's STOPSIGNAL
    (SIGQUIT: nginx's graceful shutdown), which lets requests in flight finish."""
    port = waf()
    replies: list = []
    inflight = threading.Thread(target=lambda: replies.append(send(port, get("/slow", {}))))
    inflight.start()
    time.sleep(0.3)
    waf.proc.send_signal(signal.SIGQUIT)
    inflight.join(timeout=10)
    assert [status(r) for r in replies] == [200]
    assert waf.proc.wait(timeout=10) == 0


def test_the_access_log_names_the_tenant_and_the_throttling(waf, tmp_path):
    """What a log collector counts 404s and 429s per tenant from (docs/layers/sentinel.md)."""
    port = waf({**TENANTS, "sentinel": {"tenantRateLimits": {"acme": {"requestsPerSecond": 3, "burst": 0}}}})
    for host in ("acme.app.acme.io", "acme.app.acme.io", "nobody.app.acme.io"):
        send(port, get("/v1/users?token=secret", {"Host": host}))
    send(port, get("/healthz", {}))
    time.sleep(0.2)
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [(r["tenant"], r["status"], r["limit"], r["path"]) for r in lines] == [
        ("acme", 200, "PASSED", "/v1/users"),
        ("acme", 429, "REJECTED", "/v1/users"),
        ("", 404, "", "/v1/users"),
    ]


def scrape(waf) -> str:
    with socket.create_connection(("127.0.0.1", waf.metrics_port), timeout=5) as s:
        s.sendall(f"GET {wafconfig.METRICS_PATH} HTTP/1.1\r\nHost: 10.0.0.7:9145\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while data := s.recv(65536):
            reply += data
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"Content-Type: text/plain; version=0.0.4" in head
    return body.decode()


def samples(exposition: str) -> dict:
    """{series: value}, once Prometheus' own parser and linter (`promtool check metrics`) accept it."""
    if not PROMTOOL:
        unavailable("promtool not installed (Debian `prometheus`)")
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition.encode(), capture_output=True)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()
    return {
        series: float(value)
        for series, value in (line.rsplit(" ", 1) for line in exposition.splitlines() if not line.startswith("#"))
    }


# The per-tenant counters need js_shared_dict_zone (njs >= 0.8). No registry CI reaches ships such a
# module for Debian's nginx (bookworm: njs 0.7.9; trixie: no njs at all), so these two tests run only
# where B2B_NJS_MODULE names one built from nginx/njs at its tag (docs/layers/sentinel.md says how);
# the counting logic itself runs under Debian's njs CLI everywhere (tests/test_edge_js.py).
needs_njs = pytest.mark.skipif(
    NJS is None, reason="B2B_NJS_MODULE unset: Debian ships njs 0.7.9, no js_shared_dict_zone"
)


@needs_njs
def test_the_waf_counts_404s_for_unknown_hosts_and_429s_per_tenant(waf, tmp_path):
    """Counted at log time in the shared dict (njs 1.0.0, the image's), served on the metrics port."""
    port = waf({**TENANTS, "sentinel": {"tenantRateLimits": {"acme": {"requestsPerSecond": 3, "burst": 0}}}})
    for host in ("acme.app.acme.io", "acme.app.acme.io", "acme.app.acme.io", "globex.app.acme.io"):
        send(port, get("/v1/users", {"Host": host}))
    for host in ("nobody.app.acme.io", "203.0.113.1", "evil.example"):
        send(port, get("/v1/users", {"Host": host}))
    send(port, get("/healthz", {}))
    assert samples(scrape(waf)) == {
        'b2b_edge_requests_total{tenant="acme",code="200"}': 1,
        'b2b_edge_requests_total{tenant="acme",code="429"}': 2,
        'b2b_edge_requests_total{tenant="globex",code="200"}': 1,
        # Every unknown host under one value: the raw Host never becomes a label.
        'b2b_edge_requests_total{tenant="_other",code="404"}': 3,
        'b2b_edge_throttled_total{tenant="acme"}': 2,
    }
    # Counting does not cost the access log a line (the health probe is logged nowhere).
    assert len((tmp_path / "access.log").read_text().splitlines()) == 7


@needs_njs
def test_an_idle_waf_serves_an_empty_exposition_and_nothing_but_metrics(waf):
    port = waf()
    assert samples(scrape(waf)) == {}
    other = send(waf.metrics_port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status(other) == 404
    assert status(send(port, get("/v1/users", {}))) == 200
