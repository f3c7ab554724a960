"""One measurement in this process: `python -m benchmarks.measure` reads a JSON spec on stdin.

The parent starts a fresh interpreter per measurement, so peak RSS (`ru_maxrss`) belongs to
that measurement alone and no Pulumi state survives from one to the next. Both kinds of
measurement go through the same runner (`components.render.run_program`: same mocks, same
event loop set-up) and both first evaluate once untimed, so module imports and first-use
caches are paid outside the timed run in both alike (reported apart as `warmup_s`).

Specs:
- `{"what": "program", "tenants": n}`: the real program (`__main__.py`) with the dev stack
  config and the seed blueprint and `n` generated tenants.
- `{"what": "probes", "tenants": n}`: what registers with `n` tenants and with `n` plus one
  tenant of each kind, by type (counts only, so one process serves all kinds).
- `{"what": "floor", "resources": n, "bytes": b, "leaves": l}`: the SDK floor, `n` bare
  ConfigMaps whose inputs average `b` bytes of JSON and `l` scalar values, like the
  program's objects, and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pulumi_kubernetes as k8s

from components.__main__ import read_stack_file
from components.render import ROOT, RecordingMocks, Registered, run_program

from .tenants import KINDS, connection_budget, generate, probe

STACK_FILE = os.path.join(ROOT, "Pulumi.dev.yaml")
FLOOR_NAMESPACE = "bench"


def leaves(value: Any) -> int:
    """Scalar values in a nested input: what the SDK serialises one field at a time."""
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(leaves(v) for v in value)
    return 1


def input_bytes(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


def shape(resources: list[Registered]) -> dict:
    """Total and average input size over everything registered (components included, as the floor counts them)."""
    count = len(resources)
    total_bytes = sum(input_bytes(r.inputs) for r in resources)
    total_leaves = sum(leaves(r.inputs) for r in resources)
    return {
        "resources": count,
        "avg_bytes": total_bytes / count if count else 0.0,
        "avg_leaves": total_leaves / count if count else 0.0,
    }


def program_config(tenants: list[dict]) -> dict:
    config, _ = read_stack_file(STACK_FILE)
    return config | {"tenants": tenants, "datastore": connection_budget(tenants, config.get("datastore"))}


def floor_data(avg_bytes: float, avg_leaves: float) -> dict:
    """A ConfigMap `data` map sized so the whole ConfigMap's inputs match the program's average object."""
    keys = max(1, round(avg_leaves) - 4)  # apiVersion, kind, metadata.name/namespace are the other leaves
    value_len = 0
    for _ in range(3):  # converge on the byte size: the map's own overhead depends on value_len only linearly
        data = {f"k{j:03d}": "x" * value_len for j in range(keys)}
        size = input_bytes(floor_object(0, data))
        value_len = max(0, value_len + int((avg_bytes - size) // keys))
    return {f"k{j:03d}": "x" * value_len for j in range(keys)}


def floor_object(i: int, data: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"floor-{i}", "namespace": FLOOR_NAMESPACE},
        "data": data,
    }


def floor_program(count: int, data: dict) -> Callable[[], None]:
    def program():
        for i in range(count):
            k8s.core.v1.ConfigMap(
                f"floor-{i}", metadata={"name": f"floor-{i}", "namespace": FLOOR_NAMESPACE}, data=data
            )

    return program


def timed(config: dict, program: Callable[[], None] | None = None) -> tuple[float, RecordingMocks]:
    mocks = RecordingMocks()
    start = time.perf_counter()
    run_program(config, program=program, mocks=mocks)
    return time.perf_counter() - start, mocks


def types(tenants: list[dict]) -> dict[str, int]:
    _, mocks = timed(program_config(tenants))
    return dict(Counter(r.typ for r in mocks.resources))


def measure(spec: dict) -> dict:
    if spec["what"] == "probes":
        base = generate(spec["tenants"])
        return {
            "base": types(base),
            "kinds": [dataclasses.asdict(k) | {"types": types(base + [probe(k)])} for k in KINDS],
        }
    if spec["what"] == "program":
        warmup, _ = timed(program_config([]))
        seconds, mocks = timed(program_config(generate(spec["tenants"])))
        out = shape(mocks.resources) | {"types": dict(Counter(r.typ for r in mocks.resources))}
    elif spec["what"] == "floor":
        data = floor_data(spec["bytes"], spec["leaves"])
        warmup, _ = timed({}, floor_program(10, data))
        seconds, mocks = timed({}, floor_program(spec["resources"], data))
        out = shape(mocks.resources)
    else:
        raise ValueError(f"unknown measurement {spec['what']!r}")
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return out | {"seconds": seconds, "warmup_s": warmup, "peak_rss_mib": rss_kib / 1024}


if __name__ == "__main__":
    result = measure(json.load(sys.stdin))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
