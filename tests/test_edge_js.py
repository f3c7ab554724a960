"""The WAF's per-tenant counter module (components/wafconfig.py edge_js) run by the `njs` CLI.

Debian's njs is 0.7.9, which has no `ngx.shared` (js_shared_dict_zone came in 0.8.0), so a
stand-in dict with the same incr(key, delta) and items() (njs 1.0.0 nginx/ngx_js_shared_dict.c)
takes its place; tests/test_waf_nginx.py runs the module in nginx with the image's njs 1.0.0
when B2B_NJS_MODULE names one. `.ci/run` installs `njs`, so CI=true fails without it.
"""

import json
import shutil
import subprocess

from conftest import unavailable

from components import wafconfig

NJS = shutil.which("njs")

DRIVER = """
import edge from 'b2b_edge.js';
var store = {}, errors = [];
globalThis.ngx = {shared: {b2b_edge: {
    incr: function (key, delta) {
        if (FULL) { throw new Error("failed to increment value in shared dict"); }
        store[key] = (store[key] || 0) + delta;
        return store[key];
    },
}}};
function request(tenant, status, limit) {
    return {variables: {b2b_tenant: tenant, status: status, limit_req_status: limit},
            error: function (m) { errors.push(m); }};
}
var logged = REQUESTS.map(function (q) { return edge.count(request(q[0], q[1], q[2])); });
console.log(JSON.stringify({logged: logged, store: store, errors: errors}));
"""


def run(tmp_path, requests, full=False) -> dict:
    if NJS is None:
        unavailable("njs not installed (Debian `njs`; .ci/run installs it)")
    (tmp_path / "b2b_edge.js").write_text(wafconfig.edge_js())
    driver = DRIVER.replace("FULL", json.dumps(full)).replace("REQUESTS", json.dumps(requests))
    (tmp_path / "driver.js").write_text(driver)
    done = subprocess.run([NJS, "-p", str(tmp_path), str(tmp_path / "driver.js")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_counts_by_tenant_and_status_and_throttling_apart(tmp_path):
    out = run(
        tmp_path,
        [
            ["acme", "200", "PASSED"],
            ["acme", "429", "REJECTED"],
            ["acme", "429", "REJECTED"],
            # The API's own 429 is a 429 but not the WAF's throttling.
            ["globex", "429", "PASSED"],
            # Unknown hosts: $b2b_tenant is empty and no limit applies.
            ["", "404", ""],
            ["", "404", ""],
        ],
    )
    assert out["store"] == {
        "requests acme 200": 1,
        "requests acme 429": 2,
        "throttled acme": 2,
        "requests globex 429": 1,
        "requests _other 404": 2,
    }
    assert out["logged"] == ["1"] * 6 and out["errors"] == []


def test_a_full_dict_costs_no_log_line(tmp_path):
    """incr() throws when the zone has no room (ngx_js_dict_incr → "failed to increment value")."""
    out = run(tmp_path, [["acme", "200", "PASSED"]], full=True)
    assert out["logged"] == ["1"]
    assert out["errors"] == ["b2b edge counters: failed to increment value in shared dict"]


def test_exposition_groups_each_family_sorted(tmp_path):
    if NJS is None:
        unavailable("njs not installed (Debian `njs`; .ci/run installs it)")
    (tmp_path / "b2b_edge.js").write_text(wafconfig.edge_js())
    items = [["throttled acme", 2], ["requests globex 200", 5], ["requests acme 429", 2], ["requests _other 404", 7]]
    (tmp_path / "driver.js").write_text(
        f"import edge from 'b2b_edge.js'; console.log(JSON.stringify(edge.exposition({json.dumps(items)})));"
    )
    done = subprocess.run([NJS, "-p", str(tmp_path), str(tmp_path / "driver.js")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout).splitlines() == [
        (
            "# HELP b2b_edge_requests_total Requests the WAF answered, by tenant (_other: a host no tenant owns) "
            "and status code."
        ),
        "# TYPE b2b_edge_requests_total counter",
        'b2b_edge_requests_total{tenant="_other",code="404"} 7',
        'b2b_edge_requests_total{tenant="acme",code="429"} 2',
        'b2b_edge_requests_total{tenant="globex",code="200"} 5',
        "# HELP b2b_edge_throttled_total Requests the tenant's rate limit refused (429 from limit_req).",
        "# TYPE b2b_edge_throttled_total counter",
        'b2b_edge_throttled_total{tenant="acme"} 2',
    ]
