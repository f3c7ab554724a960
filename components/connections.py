"""The database's connection budget: what the server accepts and what the poolers may open.

PgBouncer (transaction mode) opens server connections per (database, user) pool, in each
pooler instance separately, and CloudNativePG's Pooler only takes `[pgbouncer]`-wide
parameters (cloudnative-pg v1.30.0 internal/webhook/v1/pooler_webhook.go allow-list;
pkg/management/pgbouncer/config/config.go writes one `* = host=...` database line and no
`[users]` section), so every limit here is per pooler instance and the same for every login:

- each login role (the shared router, each enterprise tenant) gets at most `per_login`
  server connections across all poolers: `default_pool_size` = `max_user_connections` =
  `per_login // poolers` in each; an enterprise role's `connectionLimit` is `per_login`,
  so the pooler queues clients before PostgreSQL would refuse the role;
- all poolers together open at most `max_connections - RESERVED`: `max_db_connections` =
  that // poolers in each;
- validation refuses a configuration where the logins' full pools don't fit, so one
  tenant's burst can't take connections another login was promised.
"""

from __future__ import annotations

from dataclasses import dataclass

# PostgreSQL's default `max_connections` is 100; the platform's default leaves room for a
# few enterprise logins. Raising it costs memory per connection and a rolling restart.
DEFAULT_MAX_CONNECTIONS = 300
# Left to everything that doesn't come through the poolers: superuser_reserved_connections (3),
# the CNPG instance manager, metrics exporter and backups, and an administrator's psql.
# Streaming replication uses walsenders, which PostgreSQL ≥ 12 counts outside max_connections.
RESERVED = 20
MAX_CLIENT_CONNECTIONS = 2000


def pooler_instances(ha: bool) -> int:
    return 2 if ha else 1


@dataclass(frozen=True)
class ConnectionBudget:
    max_connections: int
    per_login: int
    logins: int  # the router plus one per enterprise tenant
    poolers: int

    @property
    def pool_size(self) -> int:
        return self.per_login // self.poolers

    @property
    def pooled_total(self) -> int:
        """Server connections the poolers may hold when every login's pool is full."""
        return self.logins * self.pool_size * self.poolers

    @property
    def available(self) -> int:
        return self.max_connections - RESERVED

    def problem(self) -> str | None:
        if self.pool_size < 1:
            return f"{self.per_login} connections per login cannot be split over {self.poolers} poolers"
        if self.pooled_total > self.available:
            fits = self.available // self.logins // self.poolers * self.poolers
            lower = (
                f"lower datastore.enterpriseConnectionLimit to {fits} or less"
                if fits
                else "have fewer enterprise tenants"
            )
            return (
                f"{self.logins} logins (the router and {self.logins - 1} enterprise tenants) × {self.per_login} "
                f"connections = {self.pooled_total} exceed max_connections {self.max_connections} minus {RESERVED} "
                f"reserved; raise datastore.parameters.max_connections to at least {self.pooled_total + RESERVED} "
                f"or {lower}"
            )
        return None

    def server_parameters(self) -> dict[str, str]:
        return {"max_connections": str(self.max_connections)}

    def pooler_parameters(self) -> dict[str, str]:
        return {
            "max_client_conn": str(MAX_CLIENT_CONNECTIONS),
            "default_pool_size": str(self.pool_size),
            "max_user_connections": str(self.pool_size),
            "max_db_connections": str(self.available // self.poolers),
        }


def max_connections_of(parameters: dict[str, str]) -> int | str:
    """`max_connections` from the PostgreSQL parameters (the default when absent); the raw text if not an integer."""
    raw = parameters.get("max_connections", str(DEFAULT_MAX_CONNECTIONS))
    return int(raw) if raw.isdigit() else raw
