"""The benchmark's pure parts (tenant generator, figures → targets) and one small end-to-end run.

No timing is asserted anywhere: the benchmark is a report (`make bench`), not a test.
"""

import json
from collections import Counter

import pytest
from conftest import SEED

from benchmarks import report, run
from benchmarks.measure import floor_data, floor_object, input_bytes, leaves
from benchmarks.tenants import KINDS, Kind, connection_budget, generate, probe
from components.settings import cross_check_settings, load_inputs


def mix(tenants):
    return (
        Counter(t["plan"] for t in tenants)
        + Counter(t["isolation"] for t in tenants)
        + Counter(domain=sum(1 for t in tenants if t.get("domains")))
    )


def test_generator_is_deterministic_and_each_size_extends_the_smaller():
    assert generate(300) == generate(300)
    assert generate(3000)[:100] == generate(100)


def test_generator_mix_is_close_to_the_target_shares_at_every_size():
    for n in (10, 100, 1000, 3000):
        found = mix(generate(n))
        assert abs(found["enterprise"] - 0.3 * n) <= 1, (n, found)
        assert abs(found["rls"] - 0.5 * n) <= 2, (n, found)
        assert abs(found["domain"] - 0.1 * n) <= 1, (n, found)
    assert {(t["plan"], t["isolation"], bool(t.get("domains"))) for t in generate(100)} == {
        (k.plan, k.isolation, k.domain) for k in KINDS
    }


def test_generated_tenants_and_probes_are_valid_stack_config():
    tenants = generate(3000) + [probe(k) for k in KINDS]
    inputs = load_inputs({"blueprint": SEED, "tenants": tenants, "datastore": connection_budget(tenants)})
    assert len(inputs.settings.tenants) == 3008
    assert cross_check_settings(inputs.settings, inputs.blueprint) == []


def test_floor_configmap_matches_the_programs_average_object():
    data = floor_data(900.0, 40.0)
    obj = floor_object(0, data)
    assert leaves(obj) == 40
    assert abs(input_bytes(obj) - 900) <= 40


def summary(**overrides):
    """Synthetic figures that meet every target exactly at its limit."""
    sizes = [
        {
            "tenants": 10,
            "resources": 100,
            "program_s": 1.2,
            "floor_s": 1.0,
            "peak_rss_mib": 100.0,
            "floor_peak_rss_mib": 90.0,
            "avg_bytes": 700.0,
        },
        {
            "tenants": 1000,
            "resources": 1090,
            "program_s": 2.0,
            "floor_s": 2.0,
            "peak_rss_mib": 400.0,
            "floor_peak_rss_mib": 300.0,
            "avg_bytes": 700.0,
        },
        {
            "tenants": 3000,
            "resources": 3090,
            "program_s": 6.6,
            "floor_s": 6.0,
            "peak_rss_mib": 1024.0,
            "floor_peak_rss_mib": 600.0,
            "avg_bytes": 700.0,
        },
    ]
    kinds = [
        {
            "kind": "business/schema/no domain",
            "plan": "business",
            "isolation": "schema",
            "domain": False,
            "added": 1,
            "types": {},
        },
        {
            "kind": "enterprise/schema/domain",
            "plan": "enterprise",
            "isolation": "schema",
            "domain": True,
            "added": 4,
            "types": {},
        },
    ]
    base = {"sizes": sizes, "kinds": kinds, "floor_per_resource_s": (6.6 - 1.2) / 2990}
    for key, value in overrides.items():
        path = key.split("__")
        target = base
        for part in path[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        target[path[-1]] = value
    return base


def results(s):
    return [c.result for c in report.checks(s)]


def test_every_target_passes_at_its_limit():
    assert results(summary()) == ["PASS"] * 6


@pytest.mark.parametrize(
    "override, failing",
    [
        ({"sizes__0__floor_s": 0.9999}, 0),  # 1.2 / 0.9999: just above 1.2
        ({"floor_per_resource_s": (6.6 - 1.2) / 2990 * 0.999}, 1),  # a tenant costs a bit more than a bare resource
        ({"sizes__2__program_s": 6.61, "floor_per_resource_s": 1.0}, 2),  # 6.61 / 2.0 > 3.3
        ({"kinds__0__added": 2}, 3),
        ({"kinds__1__added": 5}, 4),
        ({"sizes__2__peak_rss_mib": 1024.5}, 5),
    ],
)
def test_each_target_fails_just_past_its_limit(override, failing):
    found = results(summary(**override))
    assert found[failing] == "FAIL"
    assert found.count("FAIL") == 1, found


def test_targets_without_their_figures_are_not_applicable():
    s = summary()
    s["sizes"] = s["sizes"][:1]
    s["kinds"] = []
    assert results(s) == ["PASS", "N/A", "N/A", "N/A", "N/A", "N/A"]


def test_marginal_resources_per_tenant_are_relative_to_the_smallest_size():
    assert report.marginal(summary()["sizes"]) == [None, 990 / 990, 2990 / 2990]


def test_a_kind_row_is_the_difference_by_type():
    row = run.kind_row(
        {"a": 3, "b": 1}, {"plan": "business", "isolation": "rls", "domain": True, "types": {"a": 3, "b": 2, "c": 1}}
    )
    assert row == {
        "plan": "business",
        "isolation": "rls",
        "domain": True,
        "kind": "business/rls/domain",
        "added": 2,
        "types": {"b": 1, "c": 1},
    }
    assert Kind("business", "rls", True).label == row["kind"]


def test_tables_show_every_size_and_target():
    s = summary()
    text = report.table(s) + report.checks_table(report.checks(s))
    assert "| 3,000 " in text and "| 1.000 " in text
    assert text.count("PASS") == 6


def test_smoke_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert run.main(["--sizes", "5", "--repeat", "1", "--calibration", "10", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    (row,) = figures["sizes"]
    assert row["tenants"] == 5
    assert row["resources"] == figures["calibration"]["resources"] - 10
    assert row["types"]["b2b-platform:platform:Platform"] == 1
    assert row["floor_avg_bytes"] == pytest.approx(row["avg_bytes"], rel=0.1)
    assert len(figures["kinds"]) == len(KINDS)
    assert [t["result"] for t in figures["targets"]][3:5] == ["PASS", "PASS"]
    printed = capsys.readouterr().out
    assert "| target" in printed and "figures written to" in printed
