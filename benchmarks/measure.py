"""One measurement in this process: `python -m benchmarks.measure` reads a JSON spec on stdin.

The parent starts a fresh interpreter per measurement, so peak RSS (`ru_maxrss`) belongs to
that measurement alone and no Pulumi state survives from one to the next.

Every measurement is cold and starts its clock at the same point: this module imports the
Pulumi SDK (`SDK`, what the program and the floors use of it) and the mock runner
(`components.render`, which imports none of the program's modules) and nothing else, then the
clock starts, then the program imports its own modules and evaluates, or the floor evaluates.
What a real `pulumi preview` pays on top of the SDK is thus all inside the timed window: the
program's imports, its validation, first-use caches of the SDK (paid by both sides alike).

The floors run under the interpreter settings the program sets for itself: the parent passes
the `gc` state a program run reported (thresholds, enabled) and the floor applies it before the
clock. Each measurement reports what it ran under (`gc`, `window`), so a test can check both
sides saw the same.

Specs:
- `{"what": "program", "config": {...}, "tenants": n}`: the real program (`__main__.py`) with
  `config` (the dev stack's `b2b-platform:*` keys, read by the parent) and `n` generated tenants.
- `{"what": "probes", "config": {...}, "tenants": n}`: what registers with `n` tenants and with
  `n` plus one tenant of each kind, by type (counts only, so one process serves all kinds).
- `{"what": "floor", "style": "typed"|"plain", "resources": n, "bytes": b, "leaves": l, "depth": d,
  "containers": c, "gc": {...}}`: the SDK floor, `n` objects sized like the program's average
  object, and nothing else. `typed`: the `ConfigMap` class with a flat `data` map of `l − 4`
  strings (what a minimal program would write). `plain`: `pulumi.CustomResource` with inputs of
  the same bytes, leaves, nesting depth and number of maps as the program's average object.
- `{"what": "imports", "config": {...}}`: the import statements of `__main__.py` (the
  program's own modules, the SDK already imported), timed, then the stack's validation.
"""

from __future__ import annotations

import ast
import gc
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes.autoscaling.v2
import pulumi_kubernetes.meta.v1
import pulumi_random
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import ConfigMap

from components.render import ROOT, RecordingMocks, Registered, run_program

from .tenants import KINDS, generate, probe, sized

# What every measurement imports before its clock starts: the SDK the program and the floors use
# (pulumi-kubernetes loads its submodules on first use; `timed` reports any the window still loads).
SDK = (pulumi, pulumi_random, pulumi_kubernetes.autoscaling.v2, pulumi_kubernetes.meta.v1, CustomResource, ConfigMap)
# The runner and the package it lives in: loaded before the clock, not the program's modules.
RUNNER_MODULES = frozenset({"components", "components.render"})
FLOOR_NAMESPACE = "bench"
FLOOR_PROJECT = "bench-floor"
# The type token is only a string to the SDK; under mocks nothing checks a ConfigMap's fields.
PLAIN_FLOOR_TYPE = "kubernetes:core/v1:ConfigMap"


def leaves(value: Any) -> int:
    """Scalar values in a nested input: what the SDK serialises one field at a time."""
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(leaves(v) for v in value)
    return 1


def depth(value: Any) -> int:
    """Nesting depth: 0 for a scalar, 1 + the deepest child for a map or list."""
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, (list, tuple)):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def containers(value: Any) -> int:
    """Maps and lists in a nested input, the value itself included."""
    if isinstance(value, dict):
        return 1 + sum(containers(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return 1 + sum(containers(v) for v in value)
    return 0


def input_bytes(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")))


def shape(resources: list[Registered]) -> dict:
    """Total and average input size over everything registered (components included, as the floors count them)."""
    count = len(resources)

    def avg(measure: Callable[[Any], int]) -> float:
        return sum(measure(r.inputs) for r in resources) / count if count else 0.0

    return {
        "resources": count,
        "avg_bytes": avg(input_bytes),
        "avg_leaves": avg(leaves),
        "avg_depth": avg(depth),
        "avg_containers": avg(containers),
    }


def _value_len(whole: Callable[[int], dict], avg_bytes: float, keys: int) -> int:
    """The string length that brings `whole(length)`, an object with `keys` such strings, to `avg_bytes` of JSON."""
    value_len = 0
    for _ in range(3):  # converges: the object's size is linear in value_len
        value_len = max(0, value_len + int((avg_bytes - input_bytes(whole(value_len))) // keys))
    return value_len


def floor_data(avg_bytes: float, avg_leaves: float) -> dict:
    """A ConfigMap `data` map sized so the whole ConfigMap's inputs match the program's average object."""
    keys = max(1, round(avg_leaves) - 4)  # apiVersion, kind, metadata.name/namespace are the other leaves

    def build(value_len: int) -> dict:
        return {f"k{j:03d}": "x" * value_len for j in range(keys)}

    return build(_value_len(lambda n: floor_object(0, build(n)), avg_bytes, keys))


def plain_spec(avg_bytes: float, avg_leaves: float, avg_depth: float, avg_containers: float) -> dict:
    """A nested `spec` so that a plain floor object has the program's average bytes, leaves, depth and maps.

    A chain of maps down to the object's depth, the leaves spread over as many sibling maps
    at the bottom as the remaining container count asks for.
    """
    keys = max(1, round(avg_leaves) - 4)
    # The object and its metadata are two maps; spec's chain starts one level below the object.
    chain = max(1, round(avg_depth) - 2)
    groups = max(1, min(keys, round(avg_containers) - 2 - chain))

    def build(value_len: int) -> dict:
        bottom: dict = {f"g{g:02d}": {} for g in range(groups)}
        for j in range(keys):
            bottom[f"g{j % groups:02d}"][f"k{j:03d}"] = "x" * value_len
        spec = bottom
        for level in range(chain - 1):
            spec = {f"n{level}": spec}
        return spec

    return build(_value_len(lambda n: plain_object(0, build(n)), avg_bytes, keys))


def floor_object(i: int, data: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"floor-{i}", "namespace": FLOOR_NAMESPACE},
        "data": data,
    }


def plain_object(i: int, spec: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"floor-{i}", "namespace": FLOOR_NAMESPACE},
        "spec": spec,
    }


def floor_program(count: int, data: dict) -> Callable[[], None]:
    def program() -> None:
        for i in range(count):
            ConfigMap(f"floor-{i}", metadata={"name": f"floor-{i}", "namespace": FLOOR_NAMESPACE}, data=data)

    return program


def plain_program(count: int, spec: dict) -> Callable[[], None]:
    def program() -> None:
        for i in range(count):
            pulumi.CustomResource(PLAIN_FLOOR_TYPE, f"floor-{i}", plain_object(i, spec))

    return program


def gc_state() -> dict:
    return {"threshold": list(gc.get_threshold()), "enabled": gc.isenabled()}


def apply_gc(state: dict) -> None:
    gc.set_threshold(*state["threshold"])
    (gc.enable if state["enabled"] else gc.disable)()


def program_modules() -> list[str]:
    """The program's own modules loaded in this process (the runner's package and module aside)."""
    return sorted(m for m in sys.modules if m.split(".")[0] == "components" and m not in RUNNER_MODULES)


def sdk_modules() -> set[str]:
    return {m for m in sys.modules if m.split(".")[0] in ("pulumi", "pulumi_kubernetes", "pulumi_random")}


def timed(run: Callable[[], Any]) -> tuple[float, Any, dict]:
    """Run `run` from the common start point; return its time, its result and what the window held.

    `window`: the program's modules already loaded when the clock started (none, on both sides)
    and the SDK modules first imported inside the window (none: the SDK is imported before).
    """
    program_at_start, sdk_at_start = program_modules(), sdk_modules()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    window = {
        "program_modules_at_start": program_at_start,
        "sdk_imported_in_window": sorted(sdk_modules() - sdk_at_start),
    }
    return seconds, result, window


def evaluate(
    config: dict, program: Callable[[], None] | None = None, project: str | None = None
) -> tuple[RecordingMocks, dict]:
    """One evaluation through the common runner: what registered, and the gc state it ran under."""
    mocks = RecordingMocks()
    seen: list[dict] = []

    def observed() -> None:
        assert program is not None
        program()
        seen.append(gc_state())

    run_program(config, program=observed if program else None, mocks=mocks, project=project)
    # The program sets its own gc state as it starts (`__main__.py`), so after the run is what it ran under.
    return mocks, seen[-1] if seen else gc_state()


def types(config: dict, tenants: list[dict]) -> dict[str, int]:
    mocks, _ = evaluate(config | {"tenants": tenants})
    return dict(Counter(r.typ for r in mocks.resources))


def main_imports() -> str:
    """The top-level import statements of `__main__.py`, as source: what the program imports before it runs."""
    with open(os.path.join(ROOT, "__main__.py"), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    imports: list[ast.stmt] = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return ast.unparse(ast.Module(body=imports, type_ignores=[]))


def measure(spec: dict) -> dict:
    if spec["what"] == "probes":
        base, config = generate(spec["tenants"]), sized(spec["config"], spec["tenants"])
        return {
            "base": types(config, base),
            "kinds": [
                {"plan": k.plan, "isolation": k.isolation, "domain": k.domain}
                | {"types": types(config, [*base, probe(k)])}
                for k in KINDS
            ],
        }
    if spec["what"] == "imports":
        source = compile(main_imports(), "<__main__.py imports>", "exec")
        seconds, _, window = timed(lambda: exec(source, {"__name__": "bench_imports"}))
        from components.settings import load_inputs

        start = time.perf_counter()
        load_inputs(spec["config"], root=ROOT)
        validate_s = time.perf_counter() - start
        out: dict = {"validate_s": validate_s, "modules": len(program_modules())}
    elif spec["what"] == "program":
        # The caller sized the datastore for these tenants (tenants.sized), so nothing of the
        # program loads before the clock.
        config = spec["config"] | {"tenants": generate(spec["tenants"])}
        seconds, (mocks, state), window = timed(lambda: evaluate(config))
        out = shape(mocks.resources) | {"types": dict(Counter(r.typ for r in mocks.resources)), "gc": state}
    elif spec["what"] == "floor":
        apply_gc(spec["gc"])
        if spec["style"] == "typed":
            program = floor_program(spec["resources"], floor_data(spec["bytes"], spec["leaves"]))
        elif spec["style"] == "plain":
            shaped = plain_spec(spec["bytes"], spec["leaves"], spec["depth"], spec["containers"])
            program = plain_program(spec["resources"], shaped)
        else:
            raise ValueError(f"unknown floor style {spec['style']!r}")
        seconds, (mocks, state), window = timed(lambda: evaluate({}, program, project=FLOOR_PROJECT))
        out = shape(mocks.resources) | {"gc": state}
    else:
        raise ValueError(f"unknown measurement {spec['what']!r}")
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return out | {"seconds": seconds, "window": window, "peak_rss_mib": rss_kib / 1024}


if __name__ == "__main__":
    result = measure(json.load(sys.stdin))
    sys.stdout.write("\n" + json.dumps(result) + "\n")
