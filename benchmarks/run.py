"""`python -m benchmarks`: the program's cost against the Pulumi SDK floor, per tenant count.

For every size, each repetition evaluates the real program (seed blueprint, dev stack
config, n generated tenants) and then the floor (as many bare ConfigMaps, of the program's
average input size at that size) in fresh subprocesses; repetitions are interleaved so
drift on the machine hits both alike. Times are medians. The floor's cost per bare
resource is a slope, (floor(r0 + K) − floor(r0)) / K with r0 the smallest size's resource
count, so the floor's fixed start-up is not spread over its resources. Per tenant kind, one
program run adds a single probe tenant to the smallest size and diffs what it registers.

Prints the tables and the targets with PASS/FAIL, writes the figures as JSON, exits 0
whatever the targets say (a crash in a measurement still fails).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata

from . import report
from .tenants import Kind

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_JSON = os.path.join(ROOT, "benchmarks", "results.json")


def measure(spec: dict) -> dict:
    """Run one measurement in a fresh interpreter and return what it printed last."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.measure"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {spec} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "pulumi": metadata.version("pulumi"),
        "pulumi_kubernetes": metadata.version("pulumi-kubernetes"),
    }


def kind_row(base: dict[str, int], probed: dict) -> dict:
    """What one tenant of a kind adds: the difference of two runs' resource counts, by type."""
    kind = Kind(probed["plan"], probed["isolation"], probed["domain"])
    diff = {t: probed["types"].get(t, 0) - base.get(t, 0) for t in sorted(set(probed["types"]) | set(base))}
    return dataclasses.asdict(kind) | {
        "kind": kind.label,
        "added": sum(probed["types"].values()) - sum(base.values()),
        "types": {t: d for t, d in diff.items() if d},
    }


def collect(
    sizes: list[int],
    repeat: int,
    calibration: int,
    run: Callable[[dict], dict] = measure,
    log: Callable[[str], None] = print,
) -> dict:
    sizes = sorted(set(sizes))
    program: dict[int, list[dict]] = {n: [] for n in sizes}
    floor: dict[int, list[dict]] = {n: [] for n in sizes}
    extra: list[dict] = []
    for rep in range(repeat):
        for n in sizes:
            program[n].append(run({"what": "program", "tenants": n}))
            first = program[n][0]
            floor[n].append(
                run(
                    {
                        "what": "floor",
                        "resources": first["resources"],
                        "bytes": first["avg_bytes"],
                        "leaves": first["avg_leaves"],
                    }
                )
            )
            log(
                f"  rep {rep + 1}/{repeat} {n:>5} tenants: program {program[n][-1]['seconds']:.3f} s, floor {floor[n][-1]['seconds']:.3f} s ({first['resources']} resources)"
            )
        base = program[sizes[0]][0]
        extra.append(
            run(
                {
                    "what": "floor",
                    "resources": base["resources"] + calibration,
                    "bytes": base["avg_bytes"],
                    "leaves": base["avg_leaves"],
                }
            )
        )

    rows = []
    for n in sizes:
        runs = program[n]
        rows.append(
            {
                "tenants": n,
                "resources": runs[0]["resources"],
                "program_s": statistics.median(r["seconds"] for r in runs),
                "floor_s": statistics.median(r["seconds"] for r in floor[n]),
                "program_runs_s": [r["seconds"] for r in runs],
                "floor_runs_s": [r["seconds"] for r in floor[n]],
                "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                "floor_peak_rss_mib": max(r["peak_rss_mib"] for r in floor[n]),
                "avg_bytes": runs[0]["avg_bytes"],
                "avg_leaves": runs[0]["avg_leaves"],
                "floor_avg_bytes": floor[n][0]["avg_bytes"],
                "warmup_s": statistics.median(r["warmup_s"] for r in runs),
                "types": runs[0]["types"],
            }
        )
    extra_s = statistics.median(r["seconds"] for r in extra)
    per_resource = (extra_s - rows[0]["floor_s"]) / calibration

    probes = run({"what": "probes", "tenants": sizes[0]})
    kinds = [kind_row(probes["base"], k) for k in probes["kinds"]]
    for k in kinds:
        log(f"  probe {k['kind']}: +{k['added']}")

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repeat": repeat,
        "calibration": {
            "resources": rows[0]["resources"] + calibration,
            "floor_s": extra_s,
            "runs_s": [r["seconds"] for r in extra],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in extra),
        },
        "floor_per_resource_s": per_resource,
        "sizes": rows,
        "kinds": kinds,
    }


def render(summary: dict, results: list[report.Check]) -> str:
    m = summary["machine"]
    return "\n\n".join(
        (
            f"b2b-platform benchmark, {summary['date']}: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
            f"pulumi {m['pulumi']}, pulumi-kubernetes {m['pulumi_kubernetes']}; median of {summary['repeat']} runs, "
            "evaluation under Pulumi mocks (imports and first-use caches excluded for program and floor alike)",
            report.table(summary),
            f"floor cost per bare resource: {summary['floor_per_resource_s'] * 1000:.3f} ms "
            f"(slope up to {summary['calibration']['resources']:,} ConfigMaps)",
            report.kinds_table(summary),
            report.checks_table(results),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="10,100,1000,3000", help="tenant counts, comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per measurement; the median is reported (default: %(default)s)"
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=3000,
        help="extra bare resources for the floor's per-resource slope (default: %(default)s)",
    )
    parser.add_argument(
        "--json", default=DEFAULT_JSON, help="where to write the figures (default: benchmarks/results.json)"
    )
    ns = parser.parse_args(argv)
    sizes = [int(s) for s in ns.sizes.split(",")]
    if ns.repeat < 1 or ns.calibration < 1 or any(n < 0 for n in sizes):
        parser.error("--repeat and --calibration must be ≥ 1 and sizes ≥ 0")

    summary = collect(sizes, ns.repeat, ns.calibration, log=lambda line: print(line, file=sys.stderr, flush=True))
    results = report.checks(summary)
    summary["targets"] = [dataclasses.asdict(c) | {"result": c.result} for c in results]
    print(render(summary, results))
    with open(ns.json, "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    print(f"\nfigures written to {os.path.relpath(ns.json, os.getcwd())}")
    return 0
