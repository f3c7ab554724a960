"""The WAF tier's nginx and ModSecurity configuration, as pure builders.

The `owasp/modsecurity-crs` nginx image renders its config at start-up (coreruleset/
modsecurity-crs-docker at release/20260804, the tag that built the pinned image):
- `nginx/templates/**.template` are rendered with envsubst into /etc/nginx by the nginx base
  image; `conf.d/default.conf.template` is the server, included in `http {}`;
- `templates/modsecurity.d/*.template` (from src/etc/modsecurity.d) are rendered and copied to
  /etc/modsecurity.d (90-copy-modsecurity-config.sh); setup.conf includes modsecurity.conf,
  then modsecurity-override.conf, then crs-setup.conf and the CRS rules;
- configure-rules.sh edits crs-setup.conf from env (configure-rules.v4.conf: ALLOWED_METHODS →
  rule 900200, ALLOWED_REQUEST_CONTENT_TYPE → 900220, ...), modsecurity.conf reads MODSEC_*.

Two files replace the image's own: the server (`default.conf.template`) and the ModSecurity
override (`modsecurity-override.conf.template`, empty in the image). Everything else is the
image's env contract. Why the server is ours and not the image's:
- its `location /` sets `client_max_body_size 0` (unbounded uploads buffered to disk);
- its proxy_backend.conf sends `X-Forwarded-Proto $scheme` (http: TLS ends at the edge) and
  `X-Forwarded-Port $server_port` (8080), and sets the real client address inside
  `location /`, which nginx applies in the preaccess phase, after ModSecurity-nginx has
  already read the connection's address in the rewrite phase
  (owasp-modsecurity/ModSecurity-nginx src/ngx_http_modsecurity_module.c registers its
  handler in NGX_HTTP_REWRITE_PHASE; src/ngx_http_modsecurity_rewrite.c passes
  `connection->addr_text` to msc_process_connection): every audit record said the client was
  the edge controller. Real-IP at server level runs in nginx's post-read phase, before both;
- its cors.conf adds `Access-Control-Allow-Headers: *` to every response and
  `Access-Control-Allow-Origin: *` to 403s: CORS is the application's decision, not the WAF's;
- `proxy_pass ${BACKEND}` resolves the Service name once, at start; a variable with the
  image's `resolver` (nginx.conf.template, `valid=5s`) follows a replaced Service.

In front of the api compute the server also resolves tenants (TenantEdge: Host map, 404 for
unknown hosts, the tenant header, per-tenant limit_req zones), tested in a real nginx by
tests/test_waf_nginx.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template

from .meta import OTHER_TENANT

# The image's listener (nginxinc/nginx-unprivileged) and where nginx buffers request bodies.
PORT = 8080
HEALTH_PATH = "/healthz"
BODY_TEMP_DIR = "/var/cache/nginx"
# Request bodies up to this size stay in memory; larger ones go to BODY_TEMP_DIR.
BODY_BUFFER = "128k"
# Room in BODY_TEMP_DIR besides request bodies (nginx's other temp dirs stay empty: no proxy buffering).
BODY_TEMP_HEADROOM_MI = 16
MI = 1024 * 1024
# Our own ModSecurity rule ids: 1–99,999 is the range ModSecurity reserves for local rules.
RULE_HEALTH = 1001
RULE_GRAPHQL = 1010
# CRS rules that read GraphQL documents (the `query` member of a JSON body) as SQL or shell:
# `query GetUser($id: ID!) { user(id: $id) {...} }` scores 942190 (MSSQL `user(`), `$id`
# variables 932235/942290; checked with libmodsecurity and CRS v4.28.0 (tests/test_wafconfig.py).
GRAPHQL_FALSE_POSITIVES = (932235, 932236, 942150, 942190, 942290, 942410, 942430)


@dataclass(frozen=True, order=True)
class PodLimit:
    """One nginx limit_req zone: a rate in requests per minute (nginx's finer unit) and a burst."""

    per_minute: int
    burst: int

    @classmethod
    def share(cls, requests_per_second: int, burst: int, pods: int) -> PodLimit:
        """One pod's share of a tenant's configured budget when `pods` WAF pods split its traffic.

        nginx counts in each pod's own shared memory, so the tier admits (ready pods) × this.
        Rounded up: at `pods` ready pods a tenant gets at least what it was configured.
        """
        return cls(-(-requests_per_second * 60 // pods), -(-burst // pods))

    @property
    def zone(self) -> str:
        return f"b2b_rl_{self.per_minute}rpm_b{self.burst}"

    @property
    def retry_after(self) -> int:
        """Whole seconds until the pod admits this tenant again (one request's worth of rate)."""
        return -(-60 // self.per_minute)


@dataclass(frozen=True)
class TenantEdge:
    """Tenant resolution at the WAF: which host is which tenant, and each tenant's per-pod limit."""

    header: str
    # (host, tenant id), every tenant's `<id>.<base>`, `<id>.<previous domain>` and custom domains, lowercase.
    hosts: tuple[tuple[str, str], ...]
    # (tenant id, its limit in one pod).
    limits: tuple[tuple[str, PodLimit], ...]

    @property
    def zones(self) -> dict[PodLimit, int]:
        """Each distinct limit and how many tenants share its zone (each with a counter of its own)."""
        zones: dict[PodLimit, int] = {}
        for _, limit in self.limits:
            zones[limit] = zones.get(limit, 0) + 1
        return dict(sorted(zones.items()))

    @property
    def common(self) -> PodLimit | None:
        """The limit most tenants have: the zone map's default, so they need no line of their own
        (a request with no tenant has an empty key in every zone, so the default never counts it)."""
        zones = self.zones
        return max(zones, key=lambda z: (zones[z], z)) if zones else None


@dataclass(frozen=True)
class WafConfig:
    backend: str
    rule_engine: str
    paranoia: int
    anomaly_inbound: int
    anomaly_outbound: int
    allowed_methods: tuple[str, ...]
    allowed_content_types: tuple[str, ...]
    max_body_mb: int
    max_nonfile_body_kb: int
    max_arguments: int
    max_requests: int
    response_mime_types: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    graphql_paths: tuple[str, ...]
    # None: this WAF does not front the tenant route (no tenant resolution, every host passes).
    tenants: TenantEdge | None = None

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_mb * MI

    @property
    def worker_connections(self) -> int:
        """A proxied request holds two connections: the client's and the one to the backend."""
        return 2 * self.max_requests

    @property
    def body_temp_size(self) -> str:
        """BODY_TEMP_DIR's emptyDir limit: every request nginx can hold at once, each with a full body.

        nginx buffers a body over BODY_BUFFER to disk, and ModSecurity-nginx has it read whole
        before anything else in the preaccess phase runs (src/ngx_http_modsecurity_pre_access.c;
        a dynamic module's handler runs first, so not even limit_conn can count it first). An
        emptyDir over its sizeLimit gets the pod evicted, which no PodDisruptionBudget prevents:
        so the limit covers the worst case the connection bound allows.
        """
        return f"{self.max_requests * self.max_body_mb + BODY_TEMP_HEADROOM_MI}Mi"


def env(cfg: WafConfig) -> list[dict]:
    """The image's env contract (nginx/Dockerfile ENV; configure-rules.v4.conf for CRS variables)."""
    values = {
        "BACKEND": cfg.backend,
        "PORT": str(PORT),
        "MODSEC_RULE_ENGINE": cfg.rule_engine,
        "BLOCKING_PARANOIA": str(cfg.paranoia),
        "ANOMALY_INBOUND": str(cfg.anomaly_inbound),
        "ANOMALY_OUTBOUND": str(cfg.anomaly_outbound),
        # CRS 900200/900220: the image's defaults (CRS's) refuse PUT, PATCH, DELETE and most API bodies.
        "ALLOWED_METHODS": " ".join(cfg.allowed_methods),
        "ALLOWED_REQUEST_CONTENT_TYPE": " ".join(f"|{t}|" for t in cfg.allowed_content_types),
        # One limit for nginx (client_max_body_size) and ModSecurity: nothing bigger is buffered.
        "MODSEC_REQ_BODY_LIMIT": str(cfg.max_body_bytes),
        "MODSEC_REQ_BODY_NOFILES_LIMIT": str(cfg.max_nonfile_body_kb * 1024),
        # modsecurity.conf's rule 200007 refuses a body with this many arguments (every JSON leaf is one).
        "MODSEC_ARGUMENTS_LIMIT": str(cfg.max_arguments),
        # Outbound data-leak rules only see these response types; the image's default has no JSON.
        "MODSEC_RESP_BODY_MIMETYPE": " ".join(cfg.response_mime_types),
        # `auto` starts one worker per node CPU, each holding its own copy of the rules:
        # on a large node that alone exceeds the memory limit. Replicas scale it instead.
        "NGINX_WORKER_PROCESSES": "1",
        # nginx.conf.template's worker_connections: what body_temp_size is computed for.
        "WORKER_CONNECTIONS": str(cfg.worker_connections),
    }
    return [{"name": k, "value": v} for k, v in values.items()]


def map_hash_bucket_size(keys: list[str]) -> int:
    """nginx refuses to start unless a bucket holds the longest key (ngx_hash_init in
    src/core/ngx_hash.c: `sizeof(void *) + ngx_align(len + 2, sizeof(void *))` per element plus
    a terminating pointer); room for two, in cache lines, so collisions still fit."""
    longest = max((len(k) for k in keys), default=0)
    need = 8 + -(-(longest + 2) // 8) * 8 + 8
    return max(128, -(-2 * need // 64) * 64)


def map_hash(edge: TenantEdge) -> str:
    """Sizes for every map's hash: set before the first `map`, which fixes them otherwise
    (ngx_http_map_block in src/http/modules/ngx_http_map_module.c sets the defaults)."""
    keys = [host for host, _ in edge.hosts] + [tenant for tenant, _ in edge.limits]
    return (
        f"map_hash_bucket_size {map_hash_bucket_size(keys)};\n"
        f"map_hash_max_size {max(2048, 1 << (2 * len(keys)).bit_length())};\n"
    )


def tenant_maps(edge: TenantEdge) -> str:
    """http-level maps and zones: Host → tenant, tenant → its limit's zone, one key per zone.

    Each zone's key is the tenant id for the tenants in it and empty for every other request
    (nginx does not count an empty key), so every tenant has its own counter.
    """
    hosts = "\n".join(f"    {host} {tenant};" for host, tenant in edge.hosts)
    common = edge.common
    classes = "\n".join(f"    {tenant} {limit.zone};" for tenant, limit in edge.limits if limit != common)
    retry = "\n".join(f"    {limit.zone} {limit.retry_after};" for limit in edge.zones)
    zones = "\n".join(
        f'map $b2b_rate_zone $b2b_rl_key_{limit.zone} {{\n    default "";\n    {limit.zone} $b2b_tenant;\n}}\n'
        # ~8k counters per MiB (a state is about 128 bytes with a tenant id as key).
        f"limit_req_zone $b2b_rl_key_{limit.zone} zone={limit.zone}:{1 + tenants // 8000}m rate={limit.per_minute}r/m;"
        for limit, tenants in edge.zones.items()
    )
    return f"""# The tenant a request is for: its exact Host (lowercase, port and trailing dot removed by nginx).
map $host $b2b_tenant {{
    default "";
{hosts}
}}
map $b2b_tenant $b2b_rate_zone {{
    default "{common.zone if common else ""}";
{classes}
}}
map $b2b_rate_zone $b2b_retry_after {{
    default 1;
{retry}
}}
{zones}
{ACCESS_LOG_FORMAT}
"""


# One JSON line per request on the container's stdout, replacing the image's `main` access log
# for this server: who the tenant was, and whether limit_req passed or refused it
# ($limit_req_status: PASSED, REJECTED, ...; empty when no zone applied, e.g. an unknown host).
ACCESS_LOG = "/dev/stdout"
ACCESS_LOG_FORMAT = (
    'log_format b2b_edge escape=json \'{"time":"$time_iso8601","tenant":"$b2b_tenant","host":"$host",'
    '"status":$status,"limit":"$limit_req_status","method":"$request_method","path":"$uri",'
    '"client":"$remote_addr","seconds":$request_time}\';'
)


# Per-tenant counters of the WAF's answers, kept by nginx's JavaScript module (njs) in a
# js_shared_dict_zone all workers share, served to Prometheus on METRICS_PORT. The pinned image's
# base, nginxinc/nginx-unprivileged 1.30.4 (nginx/docker-nginx-unprivileged stable/debian/
# Dockerfile at e26803b), installs nginx-module-njs 1.0.0, whose module the image's
# nginx.conf.template does not load (modsecurity-crs-docker release/20260804): the seed
# container adds the load_module line. njs 1.0.0 nginx/ngx_js_shared_dict.c: `zone=name:size`
# (at least 8 pages), `type=number`, incr(key, delta) and items(maxCount, default 1024).
METRICS_PORT = 9145
METRICS_PATH = "/metrics"
METRICS_DICT = "b2b_edge"
EDGE_JS = "/etc/nginx/b2b_edge.js"
NJS_MODULE = "modules/ngx_http_js_module.so"
# Room in the dict per tenant: a counter per status code it gets (a handful in practice) and
# one for its throttled requests. Measured with njs 1.0.0 (built for Debian's nginx 1.22): a
# 1 MiB zone held 4047 counters, with 45- and 77-byte keys alike (the longest a 63-character
# tenant id makes). A full dict stops counting, never serving: count() catches it.
COUNTERS_PER_TENANT = 16
COUNTERS_PER_MB = 4000

EDGE_JS_SOURCE = Template("""// b2b-platform (components/wafconfig.py): the WAF's answers counted per tenant in the
// shared dict every nginx worker sees, served to Prometheus in its text format.
var OTHER = "$other";
var FAMILIES = [
    ["requests", "b2b_edge_requests_total", ["tenant", "code"],
     "Requests the WAF answered, by tenant ($other: a host no tenant owns) and status code."],
    ["throttled", "b2b_edge_throttled_total", ["tenant"],
     "Requests the tenant's rate limit refused (429 from limit_req)."],
];

function counters() {
    return ngx.shared.$dict;
}

// The access log's `if=` reads this once per request, at log time, after the status is final.
// Returns "1": the request is still logged.
function count(r) {
    var tenant = r.variables.b2b_tenant || OTHER;
    try {
        counters().incr("requests " + tenant + " " + r.variables.status, 1);
        if (r.variables.limit_req_status === "REJECTED") {
            counters().incr("throttled " + tenant, 1);
        }
    } catch (e) {
        // A full dict must not cost a request its access-log line.
        r.error("b2b edge counters: " + e.message);
    }
    return "1";
}

function exposition(items) {
    var lines = [];
    FAMILIES.forEach(function (family) {
        lines.push("# HELP " + family[1] + " " + family[3], "# TYPE " + family[1] + " counter");
        items
            .map(function (item) { return [item[0].split(" "), item[1]]; })
            .filter(function (item) { return item[0][0] === family[0]; })
            .map(function (item) {
                var labels = family[2].map(function (name, i) { return name + '="' + item[0][i + 1] + '"'; });
                return family[1] + "{" + labels.join(",") + "} " + item[1];
            })
            .sort()
            .forEach(function (line) { lines.push(line); });
    });
    return lines.join("\\n") + "\\n";
}

function metrics(r) {
    var dict = counters();
    r.headersOut["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8";
    r.return(200, exposition(dict.items(dict.size())));
}

export default { count, exposition, metrics };
""")


def edge_js() -> str:
    """EDGE_JS: the njs module. Tenant ids are DNS labels and codes digits: no label needs escaping."""
    return EDGE_JS_SOURCE.substitute(other=OTHER_TENANT, dict=METRICS_DICT)


def metrics_dict_mb(edge: TenantEdge) -> int:
    """Every tenant's counters and `_other`'s, plus a MiB to spare."""
    return 1 + (len(edge.limits) + 1) * COUNTERS_PER_TENANT // COUNTERS_PER_MB


def edge_metrics(edge: TenantEdge) -> str:
    """/etc/nginx/templates/conf.d/b2b-edge-metrics.conf.template (in `http {}`): the counters and
    the server Prometheus scrapes (only Prometheus reaches METRICS_PORT: NetworkPolicy)."""
    return f"""# b2b-platform: per-tenant counters of the WAF's answers (components/wafconfig.py).
js_import {METRICS_DICT} from {EDGE_JS};
js_shared_dict_zone zone={METRICS_DICT}:{metrics_dict_mb(edge)}m type=number;
js_set $b2b_counted {METRICS_DICT}.count;
server {{
    listen {METRICS_PORT};
    server_name _;
    access_log off;
    # The image's conf.d/modsecurity.conf turns ModSecurity on for every server.
    modsecurity off;

    location = {METRICS_PATH} {{
        js_content {METRICS_DICT}.metrics;
    }}
    location / {{
        return 404;
    }}
}}
"""


def tenant_location(edge: TenantEdge) -> str:
    """In `location /`: unknown hosts end here, the tenant's limit applies, the header is ours."""
    limits = "\n".join(
        # nginx refuses `burst=0` (ngx_http_limit_req_module.c), and no burst is the same thing.
        f"        limit_req zone={limit.zone}{f' burst={limit.burst}' if limit.burst else ''} nodelay;"
        for limit in edge.zones
    )
    return f"""        # A host no tenant owns never reaches the API.
        if ($b2b_tenant = "") {{
            return 404;
        }}
{limits}
        limit_req_status 429;
        limit_req_log_level warn;
        error_page 429 = @b2b_throttled;
        # proxy_set_header replaces a client's field of the same name (compared case-insensitively).
        proxy_set_header {edge.header} $b2b_tenant;
"""


# Where limit_req's 429 goes, with the Retry-After RFC 6585 §4 suggests.
THROTTLED = """
    location @b2b_throttled {
        default_type application/problem+json;
        add_header Retry-After $b2b_retry_after always;
        return 429 '{"title":"Too Many Requests","status":429}';
    }
"""


def nginx_server(cfg: WafConfig) -> str:
    """/etc/nginx/templates/conf.d/default.conf.template: the WAF's server, in `http {}`.

    No `${...}` in it: envsubst (defined variables only) passes it through unchanged.
    """
    trusted = "\n".join(f"    set_real_ip_from {cidr};" for cidr in cfg.trusted_proxies)
    # `if=` reads $b2b_counted (edge_metrics) at log time: that is where each request is counted.
    access = f"    access_log {ACCESS_LOG} b2b_edge if=$b2b_counted;\n" if cfg.tenants else ""
    return f"""# b2b-platform: replaces the image's default.conf.template (components/wafconfig.py says why).
server_tokens off;
{map_hash(cfg.tenants) if cfg.tenants else ""}
map $http_upgrade $connection_upgrade {{
    default upgrade;
    '' close;
}}
# The edge terminates TLS and says so; only the edge reaches this port (NetworkPolicy).
map $http_x_forwarded_proto $b2b_forwarded_proto {{
    default $http_x_forwarded_proto;
    '' $scheme;
}}
map $http_x_forwarded_port $b2b_forwarded_port {{
    default $http_x_forwarded_port;
    '' $server_port;
}}
# The edge's X-Forwarded-For, plus the edge itself (after real-IP, $remote_addr is the client).
map $http_x_forwarded_for $b2b_forwarded_for {{
    default "$http_x_forwarded_for, $realip_remote_addr";
    '' $realip_remote_addr;
}}
{tenant_maps(cfg.tenants) if cfg.tenants else ""}server {{
    listen {PORT} default_server;
    server_name _;

    # Server level: nginx applies it on reading the request, before ModSecurity sees the connection.
{trusted}
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;

{access}    client_max_body_size {cfg.max_body_mb}m;
    client_body_buffer_size {BODY_BUFFER};
    client_body_temp_path {BODY_TEMP_DIR}/client_temp;

    location / {{
{tenant_location(cfg.tenants) if cfg.tenants else ""}        set $b2b_backend {cfg.backend};
        proxy_pass $b2b_backend;
        proxy_set_header Host $host;
        proxy_set_header Proxy "";
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $b2b_forwarded_for;
        proxy_set_header X-Forwarded-Proto $b2b_forwarded_proto;
        proxy_set_header X-Forwarded-Port $b2b_forwarded_port;
        proxy_set_header X-Forwarded-Host $host;
        proxy_http_version 1.1;
        proxy_buffering off;
        proxy_connect_timeout 5s;
        proxy_read_timeout 300s;
        proxy_redirect off;
    }}

    location = {HEALTH_PATH} {{
        access_log off;
        default_type text/plain;
        return 200 "OK";
    }}
{THROTTLED if cfg.tenants else ""}}}
"""


def modsecurity_override(cfg: WafConfig) -> str:
    """/etc/nginx/templates/modsecurity.d/modsecurity-override.conf.template: loaded after the
    image's modsecurity.conf and before crs-setup.conf and the CRS rules (setup.conf), so these
    phase-1 rules run before every CRS rule of the same phase."""
    graphql = "|".join(re.escape(path) for path in cfg.graphql_paths)
    lines = [
        "# b2b-platform (components/wafconfig.py).",
        "# The WAF's own health answer: kubelet probes carry a numeric Host (CRS 920350) and were",
        "# scored and audited once per probe. nginx answers the exact path itself (never proxied).",
        "# ctl:ruleEngine=Off would not do: libmodsecurity still runs (and logs) the rules.",
        f'SecRule REQUEST_FILENAME "@streq {HEALTH_PATH}" \\',
        (
            f'    "id:{RULE_HEALTH},phase:1,pass,nolog,noauditlog,t:none,'
            'ctl:ruleRemoveByTag=OWASP_CRS,ctl:auditEngine=Off"'
        ),
    ]
    if cfg.graphql_paths:
        removals = ",".join(f"ctl:ruleRemoveTargetById={rule};ARGS:json.query" for rule in GRAPHQL_FALSE_POSITIVES)
        lines += [
            "# GraphQL documents are code; their variables (ARGS:json.variables.*) are still inspected.",
            f'SecRule REQUEST_FILENAME "@rx ^(?:{graphql})$" \\',
            f'    "id:{RULE_GRAPHQL},phase:1,pass,nolog,t:none,{removals}"',
        ]
    return "\n".join(lines) + "\n"
