"""The rendered alert rules and tenant regex, run through Prometheus' own `promtool`.

`promtool test rules` evaluates the PrometheusRule's groups on synthetic series (so the
PromQL parses and the alerts fire per tenant, per layer, and only where they should);
`promtool check config` compiles the relabel regex with RE2. Needs `promtool` (Debian
package `prometheus`): on CI (CI=true) it must be there, elsewhere the test skips.
"""

import shutil
import subprocess

import yaml
from conftest import unavailable

PROMTOOL = shutil.which("promtool")

DB_JOB = "saas-net/platform-db"  # the Datastore's PodMonitor
BROKER_JOB = "saas-net/tenant-obs-broker"


def series(name: str, values: str, **labels) -> dict:
    return {"series": name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def requests(tenant: str, code: str, per_minute: int) -> dict:
    return series("http_requests_total", f"0+{per_minute}x40", namespace="saas-net", tenant=tenant, code=code)


def latency(tenant: str, le: str, per_minute: int) -> dict:
    return series(
        "http_request_duration_seconds_bucket", f"0+{per_minute}x40", namespace="saas-net", tenant=tenant, le=le
    )


def expect(alert: str, *fired) -> dict:
    return {
        "eval_time": "30m",
        "alertname": alert,
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": summary}} for labels, summary in fired],
    }


INPUT = [
    # acme: half its 2 req/s fail → alert. globex: 1 % fail → no alert. initech: every
    # request fails but at 1 req/min, below the traffic floor → no alert.
    requests("acme", "500", 60),
    requests("acme", "200", 60),
    requests("globex", "500", 6),
    requests("globex", "200", 600),
    requests("initech", "500", 1),
    # globex: every request between 1 s and 2 s → p99 1.99 s. acme: all under 0.5 s.
    latency("globex", "1", 0),
    latency("globex", "2", 60),
    latency("globex", "+Inf", 60),
    latency("acme", "0.5", 60),
    latency("acme", "+Inf", 60),
    # initech: its one request a minute is slow too, but below the traffic floor → no alert.
    latency("initech", "1", 0),
    latency("initech", "2", 1),
    latency("initech", "+Inf", 1),
    series("cnpg_collector_up", "1x40", namespace="saas-net", cluster="platform-db", pod="platform-db-1", job=DB_JOB),
    series("cnpg_collector_up", "0x40", namespace="saas-net", cluster="platform-db", pod="platform-db-2", job=DB_JOB),
    series("up", "1x40", job=DB_JOB, pod="platform-db-1"),
    series("up", "1x40", job=DB_JOB, pod="platform-db-2"),
    series("cnpg_pg_replication_lag", "120x40", job=DB_JOB, pod="platform-db-2"),
    series("cnpg_pg_replication_lag", "2x40", job=DB_JOB, pod="platform-db-3"),
    # No `up` for the broker at all: its PodMonitor found nothing to scrape.
    series("gnatsd_varz_jetstream_stats_storage", "90x40", job=BROKER_JOB, pod="lifecycle-0"),
    series("gnatsd_varz_jetstream_config_max_storage", "100x40", job=BROKER_JOB, pod="lifecycle-0"),
    series("gnatsd_varz_jetstream_stats_storage", "10x40", job=BROKER_JOB, pod="lifecycle-1"),
    series("gnatsd_varz_jetstream_config_max_storage", "100x40", job=BROKER_JOB, pod="lifecycle-1"),
]

EXPECTED = [
    expect(
        "TenantHighErrorRate",
        ({"severity": "warning", "tenant": "acme"}, "Tenant acme: 50% of requests fail with 5xx (threshold 5%)"),
    ),
    expect(
        "TenantHighLatencyP99",
        ({"severity": "warning", "tenant": "globex"}, "Tenant globex: p99 latency 1.99s (threshold 1.0s)"),
    ),
    expect(
        "DatabaseInstanceDown",
        (
            {
                "severity": "critical",
                "namespace": "saas-net",
                "cluster": "platform-db",
                "pod": "platform-db-2",
                "job": DB_JOB,
            },
            "PostgreSQL cluster platform-db: instance platform-db-2 is down or not scraped",
        ),
    ),
    expect(
        "DatabaseReplicationLag",
        (
            {"severity": "warning", "pod": "platform-db-2"},
            "PostgreSQL cluster platform-db: replica platform-db-2 is 2m 0s behind",
        ),
    ),
    expect(
        "BrokerDown", ({"severity": "critical", "job": BROKER_JOB}, "NATS lifecycle: server  is down or not scraped")
    ),
    expect(
        "BrokerJetStreamStorageHigh",
        ({"severity": "warning", "pod": "lifecycle-0"}, "NATS lifecycle: JetStream storage on lifecycle-0 is 90% full"),
    ),
]


def promtool(*args, cwd) -> str:
    if PROMTOOL is None:
        unavailable("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alerts_fire_per_tenant_and_per_layer(seed_render, tmp_path):
    (rule,) = seed_render.kind("PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": INPUT, "alert_rule_test": EXPECTED}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_tenant_regex_compiles_as_re2(seed_render, tmp_path):
    relabel = seed_render.get("ServiceMonitor", "tenant-obs-computes")["spec"]["endpoints"][0]["metricRelabelings"]
    config = {
        "scrape_configs": [
            {
                "job_name": "computes",
                "static_configs": [{"targets": ["tenant-api:80"]}],
                "metric_relabel_configs": [
                    {"action": r["action"], "source_labels": r["sourceLabels"], "regex": r["regex"]} for r in relabel
                ],
            }
        ]
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml", cwd=tmp_path)


def throttled(tenant: str, pod: str, values: str) -> dict:
    return series("b2b_edge_throttled_total", values, namespace="saas-net", tenant=tenant, pod=pod)


def test_a_tenant_throttled_persistently_alerts_a_burst_does_not(seed_render, tmp_path):
    """The WAF's per-tenant counters (components/wafconfig.py edge_js), one series per WAF pod."""
    (rule,) = seed_render.kind("PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    board = seed_render.get("ConfigMap", "tenant-obs-dashboard")["data"]["tenant-obs-tenants.json"]
    unknown_hosts = yaml.safe_load(board)["panels"][4]["targets"][0]["expr"].replace("$__rate_interval", "5m")
    inputs = [
        # acme: over its limit for 40 minutes on both WAF pods (30 refusals a minute each); one
        # pod restarts at minute 20 and counts from 0 again (rate() reads the reset).
        throttled("acme", "edge-waf-a", "0+30x40"),
        throttled("acme", "edge-waf-b", "0+30x20 0+30x19"),
        # globex: a 5-minute burst over its limit, then within it.
        throttled("globex", "edge-waf-a", "0+60x5 300x35"),
        # A flood of requests for hosts no tenant owns (100/s over two pods): a series, no alert.
        series("b2b_edge_requests_total", "0+3000x40", namespace="saas-net", tenant="_other", code="404", pod="a"),
        series("b2b_edge_requests_total", "0+3000x40", namespace="saas-net", tenant="_other", code="404", pod="b"),
    ]
    acme = (
        {"severity": "warning", "tenant": "acme"},
        "Tenant acme: the WAF refuses 1 requests/s over its rate limit (429), continuously for 15m",
    )
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": inputs,
                "alert_rule_test": [
                    # Pending, not firing, while the 15 minutes have not passed (globex's burst never gets there).
                    {**expect("TenantThrottled"), "eval_time": "12m"},
                    expect("TenantThrottled", acme),
                ],
                "promql_expr_test": [
                    {
                        "expr": unknown_hosts,
                        "eval_time": "30m",
                        "exp_samples": [{"labels": '{tenant="_other"}', "value": 100}],
                    }
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in promtool("test", "rules", "tests.yaml", cwd=tmp_path)
