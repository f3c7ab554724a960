"""The shipped tenancy SQL against a real PostgreSQL.

A throwaway database per session gets what a CloudNativePG cluster of this platform would
hold: sql/bootstrap.sql (as initdb's post-init SQL), the roles and schemas of the rendered
`managed.roles` and Database `schemas` for six tenants (three per isolation model, one of
each enterprise), and the application templates sql/rls_shared_table.sql and
sql/tenant_schema.sql. Roles are cluster-wide, so every platform role name is rewritten
to a random prefix and dropped afterwards.

Set B2B_TEST_DSN to a superuser DSN; the default is the local server. With CI=true an
unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager

import psycopg
import pytest
from conftest import TEST_DSN, seed, unavailable
from psycopg import errors, sql

from components.blueprint import parse_blueprint
from components.contracts import Refs
from components.datastore import SQL_DIR, DatastoreArgs, database_schemas, managed_roles
from components.settings import parse_settings

DSN = TEST_DSN
PREFIX = f"b2bt{secrets.token_hex(3)}_"
OWNER = f"{PREFIX}app"
SCHEMA_TENANTS = {"alpha": "business", "bravo-co": "business", "charlie": "enterprise"}
RLS_TENANTS = {"delta": "business", "echo-co": "business", "foxtrot": "enterprise"}
TENANTS = [{"id": i, "plan": p, "isolation": "schema"} for i, p in SCHEMA_TENANTS.items()] + [
    {"id": i, "plan": p, "isolation": "rls"} for i, p in RLS_TENANTS.items()
]


def renamed(name: str) -> str:
    """A platform role name (tenant_*) under this session's prefix."""
    return PREFIX + name.removeprefix("tenant_")


def role(tenant_id: str) -> str:
    return renamed("tenant_" + tenant_id.replace("-", "_"))


def shipped(file: str) -> str:
    with open(os.path.join(SQL_DIR, file), encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r"\btenant_(router|rls|login)\b", lambda m: renamed(m.group(0)), text)
    return text.replace("'tenant_'", f"'{PREFIX}'")


def layout(tenants: list, purge: tuple = ()) -> tuple[list, list]:
    """The rendered `managed.roles` and Database `schemas`, renamed for this session."""
    bp = parse_blueprint(seed())
    args = DatastoreArgs.of(
        bp.one("datastore"), bp, parse_settings({"tenants": tenants, "purgeTenants": list(purge)}), Refs.of(bp)
    )
    roles = [
        {**r, "name": renamed(r["name"]), "inRoles": [renamed(g) for g in r.get("inRoles", [])]}
        for r in managed_roles(args)
    ]
    schemas = [
        {**s, "name": renamed(s["name"]), **({"owner": renamed(s["owner"])} if "owner" in s else {})}
        for s in database_schemas(args)
    ]
    return roles, schemas


def apply_like_cnpg(db: psycopg.Connection, roles: list, schemas: list) -> None:
    """What CloudNativePG 1.30 runs for these lists (internal/management/controller/roles,
    database_controller_sql.go): roles not listed are left alone; `inRoles` is made exact."""
    ident = sql.Identifier
    for r in roles:
        exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r["name"],)).fetchone()
        if r["ensure"] == "absent":
            db.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident(r["name"])))
            continue
        attrs = sql.SQL("{} {} CONNECTION LIMIT {}").format(
            sql.SQL("LOGIN" if r.get("login") else "NOLOGIN"),
            sql.SQL("INHERIT" if r.get("inherit", True) else "NOINHERIT"),
            sql.Literal(r.get("connectionLimit", -1)),
        )
        db.execute(sql.SQL("ALTER ROLE {} {}" if exists else "CREATE ROLE {} {}").format(ident(r["name"]), attrs))
    for r in roles:
        if r["ensure"] == "absent":
            continue
        current = {
            row[0]
            for row in db.execute(
                "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                (r["name"],),
            )
        }
        for group in set(r["inRoles"]) - current:
            db.execute(sql.SQL("GRANT {} TO {}").format(ident(group), ident(r["name"])))
        for group in current - set(r["inRoles"]):
            db.execute(sql.SQL("REVOKE {} FROM {}").format(ident(group), ident(r["name"])))
    for s in schemas:
        if s["ensure"] == "absent":
            db.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(ident(s["name"])))
        elif not db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (s["name"],)).fetchone():
            db.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(ident(s["name"]), ident(s["owner"])))


class Env:
    def __init__(self, admin: psycopg.Connection, dbname: str):
        self.admin = admin
        self.dbname = dbname
        self.open: list[psycopg.Connection] = []

    def connect(self, user: str, **kwargs) -> psycopg.Connection:
        conn = psycopg.connect(DSN, dbname=self.dbname, user=user, autocommit=True, connect_timeout=5, **kwargs)
        self.open.append(conn)
        return conn

    def superuser(self) -> psycopg.Connection:
        conn = psycopg.connect(DSN, dbname=self.dbname, autocommit=True, connect_timeout=5)
        self.open.append(conn)
        return conn

    def router(self) -> psycopg.Connection:
        return self.connect(renamed("tenant_router"))


@contextmanager
def tenant_tx(conn: psycopg.Connection, tenant_id: str | None, as_role: str | None = None):
    """One pooled transaction: context set with SET LOCAL / set_config(..., true) only."""
    with conn.transaction():
        if as_role or tenant_id:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(as_role or role(tenant_id))))
        if tenant_id:
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        yield conn


@pytest.fixture(scope="module")
def env():
    try:
        admin = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL unreachable at {DSN!r} (set B2B_TEST_DSN): {exc}")
    dbname = f"{PREFIX}db"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(OWNER)))
    admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(OWNER)))
    e = Env(admin, dbname)
    try:
        su = e.superuser()
        su.execute(shipped("bootstrap.sql"))
        apply_like_cnpg(su, *layout(TENANTS))
        # The application's migrations: shared tables as the owner, each schema tenant's
        # tables as that tenant (business through the router, enterprise on its own login).
        e.connect(OWNER).execute(shipped("rls_shared_table.sql"))
        router = e.router()
        for tid, plan in (SCHEMA_TENANTS | RLS_TENANTS).items():
            conn = router if plan == "business" else e.connect(role(tid))
            with tenant_tx(conn, tid):
                if tid in SCHEMA_TENANTS:
                    conn.execute(shipped("tenant_schema.sql"))
                table = "documents" if tid in SCHEMA_TENANTS else "shared.documents"
                conn.execute(f"INSERT INTO {table} (title) VALUES (%s), (%s)", (f"{tid} one", f"{tid} two"))
        yield e
    finally:
        for conn in e.open:
            conn.close()
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        for (name,) in admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (PREFIX + "%",)).fetchall():
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        admin.close()


def copied(conn, statement: str) -> list[str]:
    with conn.cursor().copy(statement) as copy:
        return b"".join(bytes(block) for block in copy).decode().splitlines()


def titles(conn, query: str = "SELECT title FROM documents ORDER BY title") -> list[str]:
    return [row[0] for row in conn.execute(query)]


def test_layout_matches_what_the_operator_renders(env):
    su = env.superuser()
    router = su.execute(
        "SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = %s", (renamed("tenant_router"),)
    ).fetchone()
    assert router == (True, False)
    members = {
        r[0]
        for r in su.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            (renamed("tenant_router"),),
        )
    }
    assert members == {role("alpha"), role("bravo-co"), role("delta"), role("echo-co")}
    assert su.execute(
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (role("alpha"),)
    ).fetchone() == (role("alpha"),)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM {other}.documents",
        "INSERT INTO {other}.documents (title) VALUES ('x')",
        "UPDATE {other}.documents SET title = 'x'",
        "DELETE FROM {other}.documents",
        "CREATE TABLE {other}.planted (x int)",
    ],
)
def test_schema_tenant_cannot_touch_another_tenants_schema(env, statement):
    router = env.router()
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, "alpha"):
        router.execute(statement.format(other=role("bravo-co")))


def test_schema_tenant_cannot_copy_another_tenants_rows(env):
    router = env.router()
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, "alpha"):
        copied(router, f"COPY {role('bravo-co')}.documents TO STDOUT")


def test_schema_tenant_sees_its_own_tables_unqualified(env):
    router = env.router()
    with tenant_tx(router, "bravo-co"):
        assert titles(router) == ["bravo-co one", "bravo-co two"]


def test_rls_tenant_reads_and_writes_only_its_rows(env):
    router = env.router()
    with tenant_tx(router, "delta"):
        assert titles(router, "SELECT title FROM shared.documents ORDER BY title") == ["delta one", "delta two"]
        assert (
            router.execute("UPDATE shared.documents SET title = 'hijacked' WHERE tenant_id = 'echo-co'").rowcount == 0
        )
        assert router.execute("DELETE FROM shared.documents WHERE tenant_id = 'echo-co'").rowcount == 0
        for statement in (
            "COPY shared.documents (tenant_id) TO STDOUT",
            "COPY (SELECT tenant_id FROM shared.documents) TO STDOUT",
        ):
            assert copied(router, statement) == ["delta", "delta"]
    su = env.superuser()
    assert titles(su, "SELECT title FROM shared.documents WHERE tenant_id = 'echo-co' ORDER BY title") == [
        "echo-co one",
        "echo-co two",
    ]


def test_rls_rejects_a_forged_tenant_id_on_write(env):
    router = env.router()
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), tenant_tx(router, "delta"):
        router.execute("INSERT INTO shared.documents (tenant_id, title) VALUES ('echo-co', 'planted')")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), tenant_tx(router, "delta"):
        router.execute("UPDATE shared.documents SET tenant_id = 'echo-co'")


def test_rls_copy_from_is_refused(env):
    router = env.router()
    with pytest.raises(errors.FeatureNotSupported), tenant_tx(router, "delta"):
        with router.cursor().copy("COPY shared.documents (tenant_id, title) FROM STDIN") as copy:
            copy.write_row(("echo-co", "planted"))


def test_setting_another_tenants_id_under_ones_role_sees_and_writes_nothing(env):
    router = env.router()
    with tenant_tx(router, None, as_role=role("delta")):
        router.execute("SELECT set_config('app.tenant_id', 'echo-co', true)")
        assert titles(router, "SELECT title FROM shared.documents") == []
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with tenant_tx(router, None, as_role=role("delta")):
            router.execute("SELECT set_config('app.tenant_id', 'echo-co', true)")
            router.execute("INSERT INTO shared.documents (tenant_id, title) VALUES ('echo-co', 'planted')")


def test_no_tenant_context_no_rows_and_no_writes(env):
    router = env.router()
    # The router on its own holds no privilege on tenant data.
    for statement in ("SELECT * FROM shared.documents", f"SELECT * FROM {role('alpha')}.documents"):
        with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, None):
            router.execute(statement)
    # A tenant role without app.tenant_id: nothing visible, nothing writable.
    with tenant_tx(router, None, as_role=role("delta")):
        assert titles(router, "SELECT title FROM shared.documents") == []
        assert router.execute("UPDATE shared.documents SET title = 'x'").rowcount == 0
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        with tenant_tx(router, None, as_role=role("delta")):
            router.execute("INSERT INTO shared.documents (title) VALUES ('orphan')")
    # Even a role exempt from RLS (the superuser) cannot write a row without a tenant.
    with pytest.raises(errors.NotNullViolation):
        env.superuser().execute("INSERT INTO shared.documents (title) VALUES ('orphan')")


def test_pooled_connection_never_carries_a_tenant_into_the_next_transaction(env):
    """One server connection, transactions of different tenants back to back: what PgBouncer
    in transaction mode does to the router's connections."""
    conn = env.router()
    sequence = ["alpha", "delta", None, "bravo-co", "echo-co", "alpha", None, "delta", "bravo-co"]
    for previous, tenant in zip([None] + sequence, sequence):
        with tenant_tx(conn, tenant):
            state = conn.execute("SELECT current_user, coalesce(current_setting('app.tenant_id', true), '')").fetchone()
            assert state == ((role(tenant), tenant) if tenant else (renamed("tenant_router"), ""))
            if tenant in SCHEMA_TENANTS:
                assert titles(conn) == [f"{tenant} one", f"{tenant} two"]
            elif tenant in RLS_TENANTS:
                assert titles(conn, "SELECT title FROM shared.documents ORDER BY title") == [
                    f"{tenant} one",
                    f"{tenant} two",
                ]
        if previous in SCHEMA_TENANTS and previous != tenant:
            with pytest.raises(errors.InsufficientPrivilege), tenant_tx(conn, tenant):
                conn.execute(f"SELECT * FROM {role(previous)}.documents")
        if previous in RLS_TENANTS and tenant in RLS_TENANTS and previous != tenant:
            with tenant_tx(conn, tenant):
                assert conn.execute(
                    "SELECT count(*) FROM shared.documents WHERE tenant_id = %s", (previous,)
                ).fetchone() == (0,)


def test_session_level_set_would_leak_which_is_why_the_platform_uses_set_local(env):
    conn = env.router()
    with conn.transaction():
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role("alpha"))))
    try:
        assert conn.execute("SELECT current_user").fetchone() == (role("alpha"),)
    finally:
        conn.execute("RESET ROLE")


def test_non_tenant_roles_see_nothing(env):
    owner = env.connect(OWNER)
    # FORCE ROW LEVEL SECURITY: the table owner has no policy, so no rows.
    assert titles(owner, "SELECT title FROM shared.documents") == []
    with pytest.raises(errors.InsufficientPrivilege):
        owner.execute(f"SELECT * FROM {role('alpha')}.documents")
    router = env.router()
    with tenant_tx(router, "delta", as_role=renamed("tenant_rls")):
        assert titles(router, "SELECT title FROM shared.documents") == []
    # A login role the platform did not make cannot even connect.
    stranger = f"{PREFIX}stranger"
    env.admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        env.connect(stranger)


def test_router_cannot_become_an_enterprise_tenant(env):
    router = env.router()
    for tenant in ("charlie", "foxtrot"):
        with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, tenant):
            pass


def test_enterprise_tenant_uses_its_own_login_and_sees_only_its_data(env):
    charlie = env.connect(role("charlie"))
    assert titles(charlie) == ["charlie one", "charlie two"]
    with pytest.raises(errors.InsufficientPrivilege):
        charlie.execute(f"SELECT * FROM {role('alpha')}.documents")
    with pytest.raises(errors.InsufficientPrivilege):
        charlie.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role("alpha"))))
    foxtrot = env.connect(role("foxtrot"))
    with tenant_tx(foxtrot, "foxtrot", as_role=role("foxtrot")):
        assert titles(foxtrot, "SELECT title FROM shared.documents ORDER BY title") == ["foxtrot one", "foxtrot two"]
    with tenant_tx(foxtrot, "delta", as_role=role("foxtrot")):
        assert titles(foxtrot, "SELECT title FROM shared.documents") == []
    limit = (
        env.superuser().execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role("charlie"),)).fetchone()
    )
    assert limit == (50,)


def test_offboarding_keeps_data_and_only_purge_drops_it(env):
    su = env.superuser()
    remaining = [t for t in TENANTS if t["id"] != "bravo-co"]
    apply_like_cnpg(su, *layout(remaining))
    # Removed: data and role retained, but the computes' router lost access.
    assert su.execute(f"SELECT count(*) FROM {role('bravo-co')}.documents").fetchone() == (2,)
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(env.router(), "bravo-co"):
        pass
    # `ensure: absent` alone fails: CNPG's plain DROP ROLE / DROP SCHEMA refuse while the tenant owns objects.
    with pytest.raises(errors.DependentObjectsStillExist):
        apply_like_cnpg(su, *layout(remaining, purge=("bravo-co",)))
    # purge_tenant refuses a tenant that is still configured...
    with pytest.raises(errors.RaiseException, match="still active"):
        su.execute("SELECT tenancy.purge_tenant('alpha')")
    # ...and empties a removed one, after which the rendered `ensure: absent` succeeds.
    su.execute("SELECT tenancy.purge_tenant('bravo-co')")
    apply_like_cnpg(su, *layout(remaining, purge=("bravo-co",)))
    assert su.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role("bravo-co"),)).fetchone() is None
    assert su.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (role("bravo-co"),)).fetchone() is None
    assert su.execute(f"SELECT count(*) FROM {role('alpha')}.documents").fetchone() == (2,)


def test_purge_removes_an_rls_tenants_rows_only(env):
    su = env.superuser()
    remaining = [t for t in TENANTS if t["id"] not in ("bravo-co", "echo-co")]
    apply_like_cnpg(su, *layout(remaining))
    su.execute("SELECT tenancy.purge_tenant('echo-co')")
    apply_like_cnpg(su, *layout(remaining, purge=("echo-co",)))
    counts = dict(su.execute("SELECT tenant_id, count(*) FROM shared.documents GROUP BY tenant_id").fetchall())
    assert counts == {"delta": 2, "foxtrot": 2}
