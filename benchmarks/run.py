"""`python -m benchmarks`: the program's cold cost against two Pulumi SDK floors, per tenant count.

For every size, each repetition evaluates the real program (seed blueprint, dev stack
config, n generated tenants) and then two floors (as many objects as the program registered,
of the program's average input size at that size): the typed `ConfigMap` class, and plain
`pulumi.CustomResource` registrations with the program's average nesting depth too. Every
measurement is one cold evaluation in a fresh interpreter, timed from the same point on both
sides (after the Pulumi SDK's import, before the program's own: see measure.py); the floors
run under the gc state the program's run reported. Repetitions are interleaved so drift on the
machine hits all sides alike; the figures are min, median and max. A floor's cost per resource
is a slope, (floor(r0 + K) − floor(r0)) / K with r0 the smallest size's resource count, so its
fixed start-up is not spread over its resources. The import row times the import statements
of `__main__.py` alone, with bytecode cached (a first, untimed run writes the cache). Per
tenant kind, one program run adds a single probe tenant to the smallest size and diffs what
it registers.

Prints the conditions, the tables and the targets with PASS/FAIL, writes the figures as JSON,
exits 0 whatever the targets say (a crash in a measurement, or a floor that ran under other
conditions than the program, still fails).
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

from components.__main__ import read_stack_file

from . import report
from .tenants import Kind, sized

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_JSON = os.path.join(ROOT, "benchmarks", "results.json")
STACK_FILE = os.path.join(ROOT, "Pulumi.dev.yaml")
# Bytecode for every child, outside the source tree and the shared virtualenv: a `pulumi preview`
# after the first one finds its bytecode cached, so the measurements do too.
PYCACHE = os.path.join(ROOT, "build", "bench-pycache")


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


def measure(spec: dict) -> dict:
    """Run one measurement in a fresh interpreter and return what it printed last."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.measure"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"measurement {spec['what']} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def unfair(program: dict, floor: dict) -> list[str]:
    """Why a floor's figure is not comparable with the program's, if it is not: other gc state, other window."""
    problems = []
    if floor["gc"] != program["gc"]:
        problems.append(f"floor ran under gc {floor['gc']}, the program under {program['gc']}")
    for side, result in (("program", program), ("floor", floor)):
        window = result["window"]
        if window["program_modules_at_start"]:
            problems.append(f"{side}: program modules loaded before the clock: {window['program_modules_at_start']}")
        if window["sdk_imported_in_window"]:
            problems.append(f"{side}: SDK modules first imported inside the window: {window['sdk_imported_in_window']}")
    return problems


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


def comparable(program: dict, floor: dict) -> dict:
    """The floor's figures, or a RuntimeError if they were taken under other conditions than the program's."""
    problems = unfair(program, floor)
    if problems:
        raise RuntimeError(
            f"{floor['resources']}-resource floor not comparable with the program: " + "; ".join(problems)
        )
    return floor


def floor_spec(style: str, program: dict, resources: int) -> dict:
    return {
        "what": "floor",
        "style": style,
        "resources": resources,
        "bytes": program["avg_bytes"],
        "leaves": program["avg_leaves"],
        "depth": program["avg_depth"],
        "containers": program["avg_containers"],
        "gc": program["gc"],
    }


def collect(
    sizes: list[int],
    repeat: int,
    calibration: int,
    run: Callable[[dict], dict] = measure,
    log: Callable[[str], None] = print,
) -> dict:
    sizes = sorted(set(sizes))
    config, _ = read_stack_file(STACK_FILE)
    program: dict[int, list[dict]] = {n: [] for n in sizes}
    floors: dict[str, dict[int, list[dict]]] = {f: {n: [] for n in sizes} for f in report.FLOORS}
    extra: dict[str, list[dict]] = {f: [] for f in report.FLOORS}
    imports: list[dict] = []
    load_before = os.getloadavg()
    run({"what": "imports", "config": config})  # writes the bytecode cache; not counted
    for rep in range(repeat):
        imports.append(run({"what": "imports", "config": config}))
        for n in sizes:
            program[n].append(run({"what": "program", "config": sized(config, n), "tenants": n}))
            latest, first = program[n][-1], program[n][0]
            for f in report.FLOORS:
                # The shape of the size's first program run (the same every repetition), this run's gc state.
                floors[f][n].append(
                    comparable(latest, run(floor_spec(f, first, first["resources"]) | {"gc": latest["gc"]}))
                )
            log(
                f"  rep {rep + 1}/{repeat} {n:>5} tenants: program {latest['seconds']:.3f} s, "
                + ", ".join(f"{f} floor {floors[f][n][-1]['seconds']:.3f} s" for f in report.FLOORS)
                + f" ({first['resources']} resources)"
            )
        base = program[sizes[0]][0]
        for f in report.FLOORS:
            extra[f].append(comparable(base, run(floor_spec(f, base, base["resources"] + calibration))))
        log(f"  rep {rep + 1}/{repeat} imports {imports[-1]['seconds'] * 1000:.1f} ms")

    rows = []
    for n in sizes:
        runs = program[n]
        row = {
            "tenants": n,
            "resources": runs[0]["resources"],
            "program_runs_s": [r["seconds"] for r in runs],
            "program_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "avg_bytes": runs[0]["avg_bytes"],
            "avg_leaves": runs[0]["avg_leaves"],
            "avg_depth": runs[0]["avg_depth"],
            "avg_containers": runs[0]["avg_containers"],
            "types": runs[0]["types"],
        }
        for f in report.FLOORS:
            row[f"{f}_runs_s"] = [r["seconds"] for r in floors[f][n]]
            row[f"{f}_rss_mib"] = max(r["peak_rss_mib"] for r in floors[f][n])
            row[f"{f}_shape"] = {
                k: floors[f][n][0][k] for k in ("avg_bytes", "avg_leaves", "avg_depth", "avg_containers")
            }
        rows.append(row)
    per_resource = {
        f: (statistics.median(r["seconds"] for r in extra[f]) - statistics.median(rows[0][f"{f}_runs_s"])) / calibration
        for f in report.FLOORS
    }

    probes = run({"what": "probes", "config": config, "tenants": sizes[0]})
    kinds = [kind_row(probes["base"], k) for k in probes["kinds"]]
    for k in kinds:
        log(f"  probe {k['kind']}: +{k['added']}")

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repeat": repeat,
        "conditions": {
            "gc": program[sizes[0]][0]["gc"],
            "window": program[sizes[0]][0]["window"],
            "load_before": list(load_before),
            "load_after": list(os.getloadavg()),
            "bytecode": os.path.relpath(PYCACHE, ROOT),
        },
        "imports": {
            "runs_s": [r["seconds"] for r in imports],
            "validate_runs_s": [r["validate_s"] for r in imports],
            "modules": imports[0]["modules"],
        },
        "calibration": {
            "resources": rows[0]["resources"] + calibration,
            "runs_s": {f: [r["seconds"] for r in extra[f]] for f in report.FLOORS},
        },
        "per_resource_s": per_resource,
        "sizes": rows,
        "kinds": kinds,
    }


def conditions(summary: dict) -> str:
    m, c = summary["machine"], summary["conditions"]
    load = "/".join(f"{x:.2f}" for x in c["load_before"]), "/".join(f"{x:.2f}" for x in c["load_after"])
    return (
        f"b2b-platform benchmark, {summary['date']}: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"pulumi {m['pulumi']}, pulumi-kubernetes {m['pulumi_kubernetes']}; load average (1/5/15 min) {load[0]} "
        f"before, {load[1]} after.\n"
        f"Each figure: median (min–max) of {summary['repeat']} fresh processes, one cold evaluation each under "
        "Pulumi mocks. Clock starts after the Pulumi SDK's import, before the program's own (program and floors "
        f"alike); bytecode cached ({c['bytecode']}); floors run under the program's gc state {c['gc']}."
    )


def render(summary: dict, results: list[report.Check]) -> str:
    per_resource = ", ".join(
        f"{label} {summary['per_resource_s'][f] * 1000:.3f} ms" for f, label in report.FLOORS.items()
    )
    return "\n\n".join(
        (
            conditions(summary),
            report.table(summary),
            (
                f"cost of one more floor resource (slope up to {summary['calibration']['resources']:,} objects): "
                f"{per_resource}"
            ),
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
        "--repeat",
        type=int,
        default=5,
        help="runs per measurement; min, median and max are reported (default: %(default)s)",
    )
    parser.add_argument(
        "--calibration",
        type=int,
        default=3000,
        help="extra resources for the floors' per-resource slopes (default: %(default)s)",
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
