"""Figures → table and targets. Pure: no Pulumi, no processes, so it is tested on synthetic numbers.

`summary` is what `run.py` collects (and writes as JSON):
- `sizes`: one row per tenant count, ascending: `tenants`, `resources`, `program_s` and
  `floor_s` (medians), `peak_rss_mib` and `floor_peak_rss_mib` (the largest over
  repetitions), `avg_bytes` (JSON input per registered resource);
- `floor_per_resource_s`: the floor's cost of one more bare resource (a slope, see run.py);
- `kinds`: one row per tenant kind: `kind` (label), `plan`, `domain`, `added` (resources
  one tenant of that kind adds to the smallest size), `types` (the added resources by type).
"""

from __future__ import annotations

from dataclasses import dataclass

GIB_MIB = 1024.0
# The targets (8); the limits live here, next to the checks that use them.
RATIO_LIMIT = 1.2
GROWTH_LIMIT = 3.3
BUSINESS_LIMIT = 1
ANY_TENANT_LIMIT = 4
RSS_LIMIT_MIB = GIB_MIB
BASE, MID, TOP = 10, 1000, 3000


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
    per_resource = summary.get("floor_per_resource_s")
    kinds = summary.get("kinds") or []
    out = []

    out.append(
        Check(
            f"program/floor time, seed + {BASE} tenants",
            base["program_s"] / base["floor_s"] if base else None,
            RATIO_LIMIT,
            f"{_ms(base['program_s'])} vs {_ms(base['floor_s'])} for {base['resources']} resources"
            if base
            else "needs the 10-tenant size",
        )
    )

    tenant_cost = (top["program_s"] - base["program_s"]) / (TOP - BASE) if base and top else None
    out.append(
        Check(
            "marginal tenant cost / floor cost per bare resource",
            tenant_cost / per_resource if tenant_cost is not None and per_resource else None,
            1.0,
            f"(t({TOP}) − t({BASE})) / {TOP - BASE} = {_ms(tenant_cost)} per tenant vs {_ms(per_resource)} per bare resource"
            if tenant_cost is not None and per_resource
            else "needs the 10- and 3000-tenant sizes",
        )
    )

    out.append(
        Check(
            f"time({TOP}) / time({MID})",
            top["program_s"] / mid["program_s"] if mid and top else None,
            GROWTH_LIMIT,
            f"{_ms(top['program_s'])} / {_ms(mid['program_s'])}"
            if mid and top
            else "needs the 1000- and 3000-tenant sizes",
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
            top["peak_rss_mib"] if top else None,
            RSS_LIMIT_MIB,
            f"{top['peak_rss_mib']:.0f} MiB of {RSS_LIMIT_MIB:.0f}" if top else "needs the 3000-tenant size",
        )
    )
    return out


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if abs(seconds) < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1000:.2f} ms" if abs(seconds) < 0.1 else f"{seconds:.2f} s"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(summary: dict) -> str:
    rows = summary["sizes"]
    head = (
        "tenants",
        "resources",
        "res/tenant",
        "program s",
        "floor s",
        "prog/floor",
        "peak RSS MiB",
        "floor RSS MiB",
        "avg input B",
    )
    lines = [head]
    for row, per_tenant in zip(rows, marginal(rows)):
        lines.append(
            (
                f"{row['tenants']:,}",
                f"{row['resources']:,}",
                _fmt(per_tenant, ".3f"),
                f"{row['program_s']:.3f}",
                f"{row['floor_s']:.3f}",
                f"{row['program_s'] / row['floor_s']:.2f}",
                f"{row['peak_rss_mib']:.0f}",
                f"{row['floor_peak_rss_mib']:.0f}",
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
    rendered = ["| " + " | ".join(str(cell).ljust(w) for cell, w in zip(line, widths)) + " |" for line in lines]
    rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(rendered)
