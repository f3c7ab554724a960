"""The rendered pgaudit settings on a real PostgreSQL with the pgaudit extension.

pgaudit loads only through `shared_preload_libraries`, which needs a server restart, so the
machine's own server is left alone: the module starts a throwaway server (initdb into a
temporary directory, a free port on 127.0.0.1, the exact `pgaudit.*` parameters of the
seed's rendered Cluster) and removes it afterwards. It needs the PostgreSQL server binaries
and Debian's `postgresql-<major>-pgaudit` (.ci/run installs it); under CI=true a missing
one fails the run, elsewhere the tests skip saying what to install.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg
import pytest
from conftest import unavailable
from psycopg import sql

MARK = secrets.token_hex(3)
TENANT = f"tenant_audit{MARK}"
ROUTER = f"router_audit{MARK}"
TABLE = f"{TENANT}.documents"
CONFIDENTIAL = f"confidential-{MARK}"


def server_binaries() -> tuple[str, str]:
    """(bindir, "") of the newest PostgreSQL server installed (Debian layout, else pg_config on PATH),
    or ("", why not)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: [int(p) for p in d.split("/")[-2].split(".") if p.isdigit()],
    )
    if shutil.which("pg_config"):
        candidates.insert(
            0, subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        )
    servers = [
        d
        for d in candidates
        if os.access(os.path.join(d, "initdb"), os.X_OK) and os.access(os.path.join(d, "pg_config"), os.X_OK)
    ]
    if not servers:
        return "", "PostgreSQL server binaries (initdb) not found (Debian package postgresql-<major>)"
    pg_config = os.path.join(servers[-1], "pg_config")
    major = (
        subprocess.run([pg_config, "--version"], capture_output=True, text=True, check=True)
        .stdout.split()[1]
        .split(".")[0]
    )
    libdir, sharedir = subprocess.run(
        [pg_config, "--pkglibdir", "--sharedir"], capture_output=True, text=True, check=True
    ).stdout.split()
    if not (
        os.path.exists(os.path.join(libdir, "pgaudit.so"))
        and os.path.exists(os.path.join(sharedir, "extension", "pgaudit.control"))
    ):
        return "", f"pgaudit is not installed for PostgreSQL {major} (Debian package postgresql-{major}-pgaudit)"
    return servers[-1], ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conf_line(name: str, value: str) -> str:
    return f"{name} = '{value.replace(chr(39), chr(39) * 2)}'\n"


class Server:
    """A throwaway PostgreSQL; as root its processes run as the `postgres` OS user (initdb refuses root)."""

    def __init__(self, bindir: str, parameters: dict):
        self.bindir = bindir
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="b2b-pgaudit-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no `postgres` OS user to run initdb as")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.parameters = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": self.dir,
            "shared_preload_libraries": "pgaudit",
            "fsync": "off",
            **parameters,
        }

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.prefix, os.path.join(self.bindir, tool), *args], capture_output=True, text=True, timeout=120
        )

    def start(self) -> None:
        init = self.run(
            "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        assert init.returncode == 0, init.stderr
        # Appended as the data directory's owner: the file is postgres's, and later lines win.
        lines = "".join(conf_line(k, v) for k, v in self.parameters.items())
        append = subprocess.run(
            [*self.prefix, "tee", "-a", os.path.join(self.data, "postgresql.conf")],
            input=lines,
            capture_output=True,
            text=True,
        )
        assert append.returncode == 0, append.stderr
        started = self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        assert started.returncode == 0, f"{started.stdout}{started.stderr}\n{self.log_text()}"

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname}"

    def log_text(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def audit_lines(self, until, timeout: float = 5.0) -> list[str]:
        """The log's `AUDIT:` lines once `until(lines)` holds (backends write their log lines asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log_text().splitlines() if "AUDIT: " in line]
            if until(lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.1)


@pytest.fixture(scope="module")
def rendered_parameters(seed_render) -> dict:
    params = seed_render.get("Cluster", "platform-db")["spec"]["postgresql"]["parameters"]
    return {k: v for k, v in params.items() if k.startswith("pgaudit.")}


@pytest.fixture(scope="module")
def server(rendered_parameters):
    bindir, reason = server_binaries()
    if reason:
        unavailable(reason)
    srv = Server(bindir, rendered_parameters)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def app(server):
    """Database `app` as CNPG would leave it: pgaudit created, a business tenant reached through a router login."""
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE app")
    ident = sql.Identifier
    with psycopg.connect(server.dsn(dbname="app"), autocommit=True) as db:
        db.execute("CREATE EXTENSION pgaudit")
        db.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident(TENANT)))
        db.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT").format(ident(ROUTER)))
        db.execute(sql.SQL("GRANT {} TO {}").format(ident(TENANT), ident(ROUTER)))
        db.execute(sql.SQL("GRANT CONNECT ON DATABASE app TO {}").format(ident(ROUTER)))
        db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(ident(TENANT), ident(TENANT)))
    return server


def as_tenant(server: Server, *statements: tuple) -> list:
    """One pooled-style transaction of the router as the tenant (SET LOCAL ROLE, as docs/layers/datastore.md says)."""
    results = []
    with psycopg.connect(server.dsn(user=ROUTER, dbname="app")) as db:
        db.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(TENANT)))
        for text, params in statements:
            cursor = db.execute(text, params)
            results.append(cursor.fetchall() if cursor.description else None)
    return results


def test_the_rendered_pgaudit_settings_load(app, rendered_parameters):
    assert rendered_parameters["pgaudit.log"] == "ddl,role,write"
    with psycopg.connect(app.dsn(dbname="app")) as db:
        assert db.execute("SHOW shared_preload_libraries").fetchone() == ("pgaudit",)
        for name, value in rendered_parameters.items():
            assert db.execute(sql.SQL("SHOW {}").format(sql.Identifier(*name.split(".")))).fetchone() == (value,), name
        assert db.execute("SELECT extversion FROM pg_extension WHERE extname = 'pgaudit'").fetchone() is not None


def test_tenant_ddl_and_writes_are_audited_and_reads_are_not(app):
    as_tenant(
        app,
        (f"CREATE TABLE {TABLE} (id int PRIMARY KEY, body text NOT NULL)", None),
        (f"INSERT INTO {TABLE} VALUES (%s, %s)", (1, CONFIDENTIAL)),
        (f"UPDATE {TABLE} SET body = %s WHERE id = %s", (CONFIDENTIAL + "-2", 1)),
    )
    (rows,) = as_tenant(app, (f"SELECT body FROM {TABLE}", None))
    assert rows == [(CONFIDENTIAL + "-2",)]

    lines = app.audit_lines(lambda found: sum(",WRITE," in line for line in found) >= 2)
    ddl = [line for line in lines if f",DDL,CREATE TABLE,TABLE,{TABLE}," in line]
    writes = [line for line in lines if f",TABLE,{TABLE}," in line and ",WRITE," in line]
    assert len(ddl) == 1, lines
    assert [w.split(",WRITE,")[1].split(",")[0] for w in writes] == ["INSERT", "UPDATE"], lines
    # log_relation: each record names the tenant's schema-qualified table.
    # log_parameter off: the bind values stay out of the log.
    assert all(w.rstrip().endswith("<not logged>") for w in writes), writes
    assert not [line for line in lines if CONFIDENTIAL in line]
    assert not [line for line in lines if ",READ," in line]
    # The role setup is audited too (`role` class): the router's membership in the tenant.
    assert [line for line in lines if ",ROLE,GRANT ROLE," in line and TENANT in line and ROUTER in line]


def test_role_defaults_do_not_follow_set_role(app):
    """Why pgaudit is global: a role's own `pgaudit.log` would not apply under the router's SET LOCAL ROLE."""
    with psycopg.connect(app.dsn(dbname="app"), autocommit=True) as db:
        db.execute(sql.SQL("ALTER ROLE {} SET pgaudit.log = 'all'").format(sql.Identifier(TENANT)))
    try:
        (shown,) = as_tenant(app, ("SHOW pgaudit.log", None))
        assert shown == [("ddl,role,write",)]
    finally:
        with psycopg.connect(app.dsn(dbname="app"), autocommit=True) as db:
            db.execute(sql.SQL("ALTER ROLE {} RESET pgaudit.log").format(sql.Identifier(TENANT)))
