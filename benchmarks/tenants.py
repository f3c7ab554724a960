"""Deterministic tenant lists with a realistic mix, for the benchmark.

Each feature of tenant i is decided by its own Weyl sequence frac(i·α) < share (α
irrational, one per feature). Unlike random draws this keeps the mix close to the target
shares at every size, even 10, and the list for n tenants is always the first n of any
longer list, so sizes differ only by the tenants added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ENTERPRISE_SHARE = 0.3
RLS_SHARE = 0.5
DOMAIN_SHARE = 0.1
# Mutually independent irrationals (over the rationals), so the three features are too.
_ALPHA = {"plan": (1 + math.sqrt(5)) / 2, "isolation": math.sqrt(2), "domain": math.sqrt(3)}


def _draw(feature: str, i: int) -> float:
    return (i * _ALPHA[feature]) % 1.0


@dataclass(frozen=True)
class Kind:
    """What decides the resources a tenant costs: plan, isolation, whether it brings a domain."""

    plan: str
    isolation: str
    domain: bool

    @property
    def label(self) -> str:
        return f"{self.plan}/{self.isolation}/{'domain' if self.domain else 'no domain'}"


KINDS = tuple(Kind(p, i, d) for p in ("business", "enterprise") for d in (False, True) for i in ("schema", "rls"))


def tenant(tid: str, kind: Kind, domain: str | None = None) -> dict:
    """One `b2b-platform:tenants` entry; a domain tenant gets a host under its own customer domain."""
    entry: dict[str, str | list[str]] = {"id": tid, "plan": kind.plan, "isolation": kind.isolation}
    if kind.domain:
        entry["domains"] = [domain or f"portal.{tid}-corp.example"]
    return entry


def kind_of(i: int) -> Kind:
    return Kind(
        "enterprise" if _draw("plan", i) < ENTERPRISE_SHARE else "business",
        "rls" if _draw("isolation", i) < RLS_SHARE else "schema",
        _draw("domain", i) < DOMAIN_SHARE,
    )


def generate(n: int) -> list[dict]:
    """n tenants `org-00000`, ... (valid ids, none reserved), about 30% enterprise, 50% rls, 10% with a domain."""
    return [tenant(f"org-{i:05d}", kind_of(i)) for i in range(n)]


def probe(kind: Kind) -> dict:
    """A tenant outside every generated list, added to a base list to measure what one tenant of `kind` costs."""
    tid = f"probe-{kind.plan[:3]}-{kind.isolation}-{'dom' if kind.domain else 'nodom'}"
    return tenant(tid, kind)


def sized(config: dict, n: int) -> dict:
    """The stack config with a datastore connection budget that fits `n` generated tenants and one probe."""
    return config | {"datastore": connection_budget([*generate(n), probe(KINDS[-1])], config.get("datastore"))}


def connection_budget(tenants: list[dict], base: dict | None = None) -> dict:
    """The `datastore` settings that fit these tenants' enterprise logins (components/connections.py):
    two server connections per login across two poolers, max_connections to match."""
    # Imported here, not at the top: the benchmark's processes load no program module before the clock starts.
    from components.connections import RESERVED

    logins = 1 + sum(1 for t in tenants if t["plan"] == "enterprise")
    per_login = 2
    parameters = {**(base or {}).get("parameters", {}), "max_connections": str(RESERVED + per_login * logins)}
    return {**(base or {}), "enterpriseConnectionLimit": per_login, "parameters": parameters}
