"""Day-2 SQL: the platform's versioned migrations and the psql script that applies them.

`sql/migrations/NNNN_<name>.sql` are applied in order by the datastore's migrations Job on
every `pulumi up` that changes them, to a fresh database and to one made by any earlier
version alike (docs/changing-a-running-platform.md). The runner is a psql script rendered
here, so the checksums it enforces are those of the files shipped beside it:
- one session-level advisory lock serialises concurrent runners (a second Job waits, then
  finds everything applied);
- `platform_migrations.applied` records each file with its SHA-256; a recorded file that is
  missing or whose checksum changed stops the run before anything is applied: an applied
  migration is never edited, a new one is added;
- each pending file runs in its own transaction together with its record, so a failure
  leaves neither; psql's ON_ERROR_STOP ends the session, which rolls the transaction back.
Every statement runs as `postgres`, the bootstrap superuser of a CloudNativePG cluster
(cloudnative-pg v1.30.0 pkg/management/postgres/initdb.go CreateDataDirectory, `--username
postgres`): objects belong to it whichever login applied them, as they did when initdb ran
the same SQL, so a fresh and an upgraded database end with the same catalog.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

SQL_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sql")
MIGRATIONS_DIR = os.path.join(SQL_DIR, "migrations")
FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
RUNNER = "migrate.sql"
# How the Job runs it: no ~/.psqlrc, only the runner's own \echo on stdout, stop at the first error.
PSQL_OPTIONS = ("-X", "-q", "-v", "ON_ERROR_STOP=1")
# Any constant: only runners of this script take it (pg_advisory_lock(bigint)).
LOCK_KEY = 0x62326270_6D696772  # "b2bpmigr"
OWNER = "postgres"


@dataclass(frozen=True)
class Migration:
    file: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: str = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """The migrations in order; their numbers must run 0001, 0002, ... without gaps or repeats."""
    files = sorted(f for f in os.listdir(directory) if not f.startswith("."))
    found = []
    for expected, file in enumerate(files, start=1):
        match = FILE_NAME.match(file)
        if not match:
            raise ValueError(f"{directory}: file {file!r} is not a migration: accepted NNNN_<a-z0-9_>.sql")
        if int(match.group(1)) != expected:
            raise ValueError(f"{directory}: file {file!r} should be numbered {expected:04d}: numbers run without gaps")
        with open(os.path.join(directory, file), encoding="utf-8") as fh:
            found.append(Migration(file, fh.read()))
    if not found:
        raise ValueError(f"{directory}: no migrations")
    return tuple(found)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def runner(migrations: tuple[Migration, ...]) -> str:
    """The psql script (`psql -X -f migrate.sql`, the files beside it) applying `migrations`."""
    shipped = ",\n      ".join(f"({_literal(m.file)}, {_literal(m.checksum)})" for m in migrations)
    head = f"""-- Rendered by components/migrations.py; applies the migrations beside it in order.
\\set ON_ERROR_STOP on
SET ROLE {OWNER};
SELECT pg_catalog.pg_advisory_lock({LOCK_KEY}) AS locked \\gset
CREATE SCHEMA IF NOT EXISTS platform_migrations;
REVOKE ALL ON SCHEMA platform_migrations FROM PUBLIC;
CREATE TABLE IF NOT EXISTS platform_migrations.applied (
  file text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
DO $check$
DECLARE
  changed record;
BEGIN
  FOR changed IN
    SELECT a.file, a.checksum AS recorded, s.checksum AS shipped
    FROM platform_migrations.applied AS a
    LEFT JOIN (VALUES
      {shipped}
    ) AS s (file, checksum) ON s.file OPERATOR(pg_catalog.=) a.file
    WHERE s.checksum IS DISTINCT FROM a.checksum
    ORDER BY a.file
  LOOP
    RAISE EXCEPTION 'migration % was applied with checksum % but the shipped one is %: '
      'an applied migration never changes, add a new one',
      changed.file, changed.recorded, coalesce(changed.shipped, 'missing');
  END LOOP;
END
$check$;
"""
    steps = [
        f"""BEGIN;
SELECT NOT EXISTS (SELECT FROM platform_migrations.applied AS a WHERE a.file OPERATOR(pg_catalog.=) {_literal(m.file)})
  AS pending \\gset
\\if :pending
\\echo applying {m.file}
\\ir {m.file}
INSERT INTO platform_migrations.applied (file, checksum) VALUES ({_literal(m.file)}, {_literal(m.checksum)});
\\endif
COMMIT;
"""
        for m in migrations
    ]
    return head + "".join(steps)


def files(migrations: tuple[Migration, ...]) -> dict[str, str]:
    """The ConfigMap's data: every migration and the runner, mounted together."""
    return {m.file: m.sql for m in migrations} | {RUNNER: runner(migrations)}
