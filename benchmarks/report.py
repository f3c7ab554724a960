"""Figures → tables and targets. Pure: no Pulumi, no processes, so it is tested on synthetic numbers.

`summary` is what `run.py` collects (and writes as JSON):
- `sizes`: one row per tenant count, ascending: `tenants`, `resources`, and per side
  (`program`, and the floors `typed` and `plain`, see `FLOORS`) `<side>_runs_s` (every
  repetition's cold time) and `<side>_rss_mib` (the largest peak RSS over repetitions);
  `avg_bytes` (JSON input per registered resource);
- `per_resource_s`: per floor, its cost of one more resource (a slope, see run.py);
- `imports`: `runs_s` (the program's own imports, SDK already loaded) and `validate_runs_s`;
- `kinds`: one row per tenant kind: `kind` (label), `plan`, `domain`, `added` (resources
  one tenant of that kind adds to the smallest size), `types` (the added resources by type).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

GIB_MIB = 1024.0
# Issue 18's targets (issue 8's, measured cold and under equal GC); the limits live here, next to the checks.
IMPORT_LIMIT_S = 0.030
RATIO_LIMIT = 1.2
MARGINAL_LIMIT = 1.0
GROWTH_LIMIT = 3.3
BUSINESS_LIMIT = 1
ANY_TENANT_LIMIT = 4
RSS_LIMIT_MIB = GIB_MIB
BASE, MID, TOP = 10, 1000, 3000
FLOORS = {"typed": "typed ConfigMap floor", "plain": "plain CustomResource floor"}


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None  # None: the run did not include what the check needs
    limit: float
    detail: str

    @property
    def result(self) -> str:
        if self.value is None:
            return "N/A"
        return "PASS" if self.value <= self.limit else "FAIL"


def median(runs: list[float]) -> float:
    return statistics.median(runs)


def spread(runs: list[float], unit: str = "s") -> str:
    """`median (min–max)`, in seconds or milliseconds."""
    scale, digits = (1000.0, 1) if unit == "ms" else (1.0, 3)
    lo, mid, hi = (f"{v * scale:.{digits}f}" for v in (min(runs), median(runs), max(runs)))
    return f"{mid} ({lo}–{hi})"


def _row(summary: dict, tenants: int) -> dict | None:
    return next((r for r in summary["sizes"] if r["tenants"] == tenants), None)


def marginal(rows: list[dict]) -> list[float | None]:
    """Resources each tenant adds beyond the smallest size: (res(n) − res(n0)) / (n − n0)."""
    base = rows[0]
    return [
        None if r is base else (r["resources"] - base["resources"]) / (r["tenants"] - base["tenants"]) for r in rows
    ]


def checks(summary: dict) -> list[Check]:
    base, mid, top = _row(summary, BASE), _row(summary, MID), _row(summary, TOP)
    per_resource = summary.get("per_resource_s") or {}
    imports = summary.get("imports")
    kinds = summary.get("kinds") or []
    out = []

    out.append(
        Check(
            "the program's own imports, bytecode cached (s)",
            median(imports["runs_s"]) if imports else None,
            IMPORT_LIMIT_S,
            f"{spread(imports['runs_s'], 'ms')} ms; then validating the stack "
            f"{spread(imports['validate_runs_s'], 'ms')} ms"
            if imports
            else "needs the import measurement",
        )
    )

    for floor, label in FLOORS.items():
        out.append(
            Check(
                f"cold program / {label}, seed + {BASE} tenants",
                median(base["program_runs_s"]) / median(base[f"{floor}_runs_s"]) if base else None,
                RATIO_LIMIT,
                f"{_ms(median(base['program_runs_s']))} vs {_ms(median(base[f'{floor}_runs_s']))} for "
                f"{base['resources']} resources"
                if base
                else f"needs the {BASE}-tenant size",
            )
        )

    tenant_cost = (
        (median(top["program_runs_s"]) - median(base["program_runs_s"])) / (TOP - BASE) if base and top else None
    )
    for floor, label in FLOORS.items():
        bare = per_resource.get(floor)
        out.append(
            Check(
                f"marginal tenant cost / one resource of the {label}",
                tenant_cost / bare if tenant_cost is not None and bare else None,
                MARGINAL_LIMIT,
                f"(t({TOP}) − t({BASE})) / {TOP - BASE} = {_ms(tenant_cost)} per tenant vs {_ms(bare)} per resource"
                if tenant_cost is not None and bare
                else f"needs the {BASE}- and {TOP}-tenant sizes",
            )
        )

    out.append(
        Check(
            f"time({TOP}) / time({MID})",
            median(top["program_runs_s"]) / median(mid["program_runs_s"]) if mid and top else None,
            GROWTH_LIMIT,
            f"{_ms(median(top['program_runs_s']))} / {_ms(median(mid['program_runs_s']))}"
            if mid and top
            else f"needs the {MID}- and {TOP}-tenant sizes",
        )
    )

    business = [k["added"] for k in kinds if k["plan"] == "business" and not k["domain"]]
    out.append(
        Check(
            "resources added by a business tenant without a domain",
            max(business) if business else None,
            BUSINESS_LIMIT,
            ", ".join(f"{k['kind']}: {k['added']}" for k in kinds if k["plan"] == "business" and not k["domain"])
            or "needs the kind probes",
        )
    )
    worst = max(kinds, key=lambda k: k["added"]) if kinds else None
    out.append(
        Check(
            "resources added by any one tenant",
            worst["added"] if worst else None,
            ANY_TENANT_LIMIT,
            f"most: {worst['kind']} ({worst['added']})" if worst else "needs the kind probes",
        )
    )

    out.append(
        Check(
            f"peak RSS at {TOP} tenants (MiB)",
            top["program_rss_mib"] if top else None,
            RSS_LIMIT_MIB,
            f"{top['program_rss_mib']:.0f} MiB of {RSS_LIMIT_MIB:.0f}" if top else f"needs the {TOP}-tenant size",
        )
    )
    return out


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if abs(seconds) < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1000:.2f} ms" if abs(seconds) < 0.1 else f"{seconds:.3f} s"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(summary: dict) -> str:
    rows = summary["sizes"]
    head = (
        "tenants",
        "resources",
        "res/tenant",
        "program s",
        "typed floor s",
        "plain floor s",
        "prog/typed",
        "prog/plain",
        "peak RSS MiB",
        "floor RSS MiB",
        "avg input B",
    )
    lines = [head]
    for row, per_tenant in zip(rows, marginal(rows), strict=True):
        program = median(row["program_runs_s"])
        lines.append(
            (
                f"{row['tenants']:,}",
                f"{row['resources']:,}",
                _fmt(per_tenant, ".3f"),
                spread(row["program_runs_s"]),
                spread(row["typed_runs_s"]),
                spread(row["plain_runs_s"]),
                f"{program / median(row['typed_runs_s']):.2f}",
                f"{program / median(row['plain_runs_s']):.2f}",
                f"{row['program_rss_mib']:.0f}",
                f"{max(row['typed_rss_mib'], row['plain_rss_mib']):.0f}",
                f"{row['avg_bytes']:.0f}",
            )
        )
    return _markdown(lines)


def kinds_table(summary: dict) -> str:
    lines = [("tenant kind", "resources added", "by type")]
    for k in summary.get("kinds") or []:
        types = ", ".join(f"{t} {n:+d}" for t, n in sorted(k["types"].items())) or "–"
        lines.append((k["kind"], str(k["added"]), types))
    return _markdown(lines)


def checks_table(results: list[Check]) -> str:
    lines = [("target", "value", "limit", "result", "detail")]
    for c in results:
        lines.append((c.name, _fmt(c.value, ".3g"), f"≤ {c.limit:g}", c.result, c.detail))
    return _markdown(lines)


def _markdown(lines: list[tuple]) -> str:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    rendered = [
        "| " + " | ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines
    ]
    rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(rendered)
