"""Day-2 SQL on PostgreSQL 18: sql/migrations through the rendered psql runner, as the Job runs it.

A database made by the previous sql/bootstrap.sql (tests/fixtures/bootstrap_0bb2d0d.sql: the
file as it was at commit 0bb2d0d, before its last change in 25abb41) and a new one end with the
same catalog; a second run changes nothing; a changed applied migration, a failing one and a
concurrent runner are handled as components/migrations.py says. The runner logs in as the
rendered `platform_migrator` role through the rendered pg_hba (tenancy_harness.local_hba).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import threading
import time

import psycopg
import pytest
from tenancy_harness import (
    DATABASE,
    MIGRATOR_PASSWORD,
    TENANTS,
    apply_like_cnpg,
    apply_schemas_like_cnpg,
    args_for,
    local_hba,
    pg18_bindir,
    run_migrations,
)
from test_pgaudit_server import Server

from components import migrations
from components.datastore import MIGRATOR_ROLE, pg_hba
from components.migrations import Migration

PREVIOUS_BOOTSTRAP = os.path.join(os.path.dirname(__file__), "fixtures", "bootstrap_0bb2d0d.sql")
SHIPPED = migrations.load()
ARGS = args_for(TENANTS)


class Database:
    """One PostgreSQL 18 server with database `app` owned by `app`, as CloudNativePG's initdb leaves it."""

    def __init__(self) -> None:
        self.server = Server(pg18_bindir(), {"shared_preload_libraries": ""})
        self.server.start()
        admin = self.connect("postgres")
        admin.execute("CREATE ROLE app LOGIN")
        admin.execute("CREATE DATABASE app OWNER app")
        self.hba(pg_hba(ARGS))

    def hba(self, rendered: list[str]) -> None:
        rules = ["local all all trust", "host all postgres 127.0.0.1/32 trust", *map(local_hba, rendered)]
        text = "\n".join([*rules, "host all all all scram-sha-256"]) + "\n"
        path = os.path.join(self.server.data, "pg_hba.conf")
        done = subprocess.run([*self.server.prefix, "tee", path], input=text, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        self.connect().execute("SELECT pg_reload_conf()")

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True, connect_timeout=5)

    def migrate(self, shipped: tuple[Migration, ...] = SHIPPED) -> subprocess.CompletedProcess:
        return run_migrations(self.server, migrations.files(shipped), user=MIGRATOR_ROLE, password=MIGRATOR_PASSWORD)

    def migrated(self, shipped: tuple[Migration, ...] = SHIPPED) -> str:
        done = self.migrate(shipped)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def dump(self) -> str:
        """The application database's schema, its rights included (--create adds the database's ACL)."""
        done = subprocess.run(
            [os.path.join(pg18_bindir(), "pg_dump"), "--schema-only", "--create", self.server.dsn(dbname=DATABASE)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        # pg_dump 18 fences the script with a random \restrict key.
        return re.sub(r"^\\(un)?restrict .*$", "", done.stdout, flags=re.M)

    def roles(self) -> list[tuple]:
        return (
            self.connect()
            .execute(
                "SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcanlogin, r.rolconnlimit, "
                "ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY 1"
            )
            .fetchall()
        )

    def applied(self) -> list[tuple]:
        return self.connect().execute("SELECT * FROM platform_migrations.applied ORDER BY file").fetchall()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def fresh():
    """A new cluster: CNPG's roles, the Job, then the Database's schemas (which wait for the Job)."""
    db = Database()
    try:
        apply_like_cnpg(db.connect(), ARGS, schemas=False)
        db.migrated()
        apply_schemas_like_cnpg(db.connect(), ARGS)
        yield db
    finally:
        db.stop()


@pytest.fixture
def upgraded():
    """A cluster made by the previous version (initdb ran its bootstrap.sql), not yet migrated."""
    db = Database()
    try:
        with open(PREVIOUS_BOOTSTRAP, encoding="utf-8") as fh:
            db.connect().execute(fh.read())
        apply_like_cnpg(db.connect(), ARGS)
        yield db
    finally:
        db.stop()


def test_an_upgraded_database_ends_like_a_fresh_one(fresh, upgraded):
    before = upgraded.dump()
    assert before != fresh.dump()
    # The last change to bootstrap.sql (25abb41) made purge_tenant refuse unregistered shared tables.
    assert "is not registered in tenancy.shared_tables" not in before
    out = upgraded.migrated()
    assert out.splitlines() == ["applying 0001_tenancy.sql"]
    assert upgraded.dump() == fresh.dump()
    assert upgraded.roles() == fresh.roles()
    assert [row[:2] for row in upgraded.applied()] == [(m.file, m.checksum) for m in SHIPPED]
    # Everything the runner made belongs to the bootstrap superuser, as initdb's SQL did.
    owners = fresh.connect().execute(
        "SELECT DISTINCT pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'tenancy' UNION SELECT pg_get_userbyid(evtowner) FROM pg_event_trigger "
        "UNION SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'applied'"
    )
    assert [r[0] for r in owners] == ["postgres"]


def test_a_second_run_changes_nothing(fresh):
    dump, applied = fresh.dump(), fresh.applied()
    assert fresh.migrated() == ""
    assert fresh.dump() == dump and fresh.applied() == applied


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: Migration(m.file, m.sql + "\n-- edited\n"), "migration 0001_tenancy.sql was applied with checksum"),
        (lambda m: Migration("0001_renamed.sql", m.sql), "but the shipped one is missing"),
    ],
)
def test_a_changed_applied_migration_is_refused(fresh, edit, message):
    dump, applied = fresh.dump(), fresh.applied()
    changed = (edit(SHIPPED[0]), Migration("0002_more.sql", "CREATE TABLE tenancy.more ();"))
    done = fresh.migrate(changed)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    # Refused before anything ran: 0002 was not applied either.
    assert fresh.dump() == dump and fresh.applied() == applied


def test_a_failing_migration_leaves_nothing_and_runs_once_fixed(fresh):
    broken = Migration("0002_notes.sql", "CREATE TABLE tenancy.notes (id int);\nSELECT 1 / 0;\n")
    done = fresh.migrate((*SHIPPED, broken))
    assert done.returncode != 0 and "division by zero" in done.stderr
    assert fresh.connect().execute("SELECT to_regclass('tenancy.notes')").fetchone() == (None,)
    assert [row[0] for row in fresh.applied()] == ["0001_tenancy.sql"]
    fixed = dataclasses.replace(broken, sql="CREATE TABLE tenancy.notes (id int);\n")
    assert fresh.migrated((*SHIPPED, fixed)).splitlines() == ["applying 0002_notes.sql"]
    assert fresh.connect().execute("SELECT to_regclass('tenancy.notes')::text").fetchone() == ("tenancy.notes",)
    assert fresh.applied()[1][:2] == ("0002_notes.sql", fixed.checksum)


def test_concurrent_runners_wait_for_each_other(fresh):
    extra = (*SHIPPED, Migration("0002_notes.sql", "CREATE TABLE tenancy.notes (id int);\n"))
    holder = fresh.connect()
    holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))  # another runner, mid-run
    result: list[subprocess.CompletedProcess] = []
    runner = threading.Thread(target=lambda: result.append(fresh.migrate(extra)))
    runner.start()
    waiting = None
    for _ in range(100):
        waiting = (
            fresh.connect()
            .execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            .fetchone()
        )
        if waiting == (1,):
            break
        time.sleep(0.1)
    assert waiting == (1,) and runner.is_alive()
    assert [row[0] for row in fresh.applied()] == ["0001_tenancy.sql"]
    holder.execute("SELECT pg_advisory_unlock(%s)", (migrations.LOCK_KEY,))
    runner.join(timeout=60)
    assert result[0].returncode == 0 and result[0].stdout.splitlines() == ["applying 0002_notes.sql"]
    assert fresh.migrated(extra) == ""


def test_the_migrator_logs_in_to_the_application_database_from_the_job_only(fresh):
    dsn = f"host=127.0.0.1 port={fresh.server.port} user={MIGRATOR_ROLE} password={MIGRATOR_PASSWORD}"
    psycopg.connect(f"{dsn} dbname={DATABASE}", connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects"):
        psycopg.connect(f"{dsn} dbname=postgres", connect_timeout=5)
    # No Job pod seen yet: CloudNativePG expands the podselector line into no line at all.
    fresh.hba([rule for rule in pg_hba(ARGS) if "${podselector:" not in rule])
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects"):
        psycopg.connect(f"{dsn} dbname={DATABASE}", connect_timeout=5)


@pytest.mark.parametrize(
    "files, message",
    [
        (["0001_a.sql", "0003_b.sql"], "'0003_b.sql' should be numbered 0002"),
        (["0001_a.sql", "0001_b.sql"], "'0001_b.sql' should be numbered 0002"),
        (["0001_a.sql", "2_b.sql"], "'2_b.sql' is not a migration: accepted NNNN_<a-z0-9_>.sql"),
        ([], "no migrations"),
    ],
)
def test_the_migration_files_must_be_numbered_in_sequence(tmp_path, files, message):
    for name in files:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(ValueError, match=re.escape(message)):
        migrations.load(str(tmp_path))
