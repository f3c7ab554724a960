"""The shipped tenancy SQL on PostgreSQL 18 behind a real PgBouncer (tests/tenancy_harness.py).

The module's database holds what a CloudNativePG cluster of this platform would hold:
sql/bootstrap.sql (as initdb's post-init SQL), the roles, schemas and pg_hba of the
rendered Cluster and Database for six tenants (three per isolation model, one of each
enterprise), and the application templates sql/rls_shared_table.sql and
sql/tenant_schema.sql. Business tenants' transactions go through the Pooler as the router,
enterprise tenants through the Pooler on their own logins. Attacks on the operations
around isolation (purge, pooling, offboarding) are in tests/test_tenant_attacks.py.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql
from tenancy_harness import (
    MASTER,
    OWNER,
    RLS_TENANTS,
    SCHEMA_TENANTS,
    TENANTS,
    args_for,
    role,
    started,
    tenant_password,
    tenant_tx,
    titles,
)


@pytest.fixture(scope="module")
def env():
    with started() as cluster:
        yield cluster


def copied(conn, statement: str) -> list[str]:
    with conn.cursor().copy(statement) as copy:
        return b"".join(bytes(block) for block in copy).decode().splitlines()


def test_layout_matches_what_the_operator_renders(env):
    su = env.superuser()
    router = su.execute(
        "SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = %s", ("tenant_router",)
    ).fetchone()
    assert router == (True, False)
    members = {
        r[0]
        for r in su.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = "
            "m.member WHERE u.rolname = %s",
            ("tenant_router",),
        )
    }
    assert members == {role("alpha"), role("bravo-co"), role("delta"), role("echo-co")}
    # The database owner owns the tenant's schema; the tenant may use it and create in it, not grant it.
    assert su.execute(
        "SELECT nspowner::regrole::text, has_schema_privilege(%s, nspname, 'USAGE, CREATE'),"
        " has_schema_privilege(%s, nspname, 'USAGE WITH GRANT OPTION') FROM pg_namespace WHERE nspname = %s",
        (role("alpha"), role("alpha"), role("alpha")),
    ).fetchone() == ("app", True, False)
    assert su.execute("SELECT version()").fetchone()[0].startswith("PostgreSQL 18.")


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
    router = env.pooled()
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, "alpha"):
        router.execute(statement.format(other=role("bravo-co")))


def test_schema_tenant_cannot_copy_another_tenants_rows(env):
    router = env.pooled()
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, "alpha"):
        copied(router, f"COPY {role('bravo-co')}.documents TO STDOUT")


def test_schema_tenant_sees_its_own_tables_unqualified(env):
    router = env.pooled()
    with tenant_tx(router, "bravo-co"):
        assert titles(router) == ["bravo-co one", "bravo-co two"]


def test_rls_tenant_reads_and_writes_only_its_rows(env):
    router = env.pooled()
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
    router = env.pooled()
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), tenant_tx(router, "delta"):
        router.execute("INSERT INTO shared.documents (tenant_id, title) VALUES ('echo-co', 'planted')")
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"), tenant_tx(router, "delta"):
        router.execute("UPDATE shared.documents SET tenant_id = 'echo-co'")


def test_rls_copy_from_is_refused(env):
    router = env.pooled()
    with (
        pytest.raises(errors.FeatureNotSupported),
        tenant_tx(router, "delta"),
        router.cursor().copy("COPY shared.documents (tenant_id, title) FROM STDIN") as copy,
    ):
        copy.write_row(("echo-co", "planted"))


def test_setting_another_tenants_id_under_ones_role_sees_and_writes_nothing(env):
    router = env.pooled()
    with tenant_tx(router, None, as_role=role("delta")):
        router.execute("SELECT set_config('app.tenant_id', 'echo-co', true)")
        assert titles(router, "SELECT title FROM shared.documents") == []
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        tenant_tx(router, None, as_role=role("delta")),
    ):
        router.execute("SELECT set_config('app.tenant_id', 'echo-co', true)")
        router.execute("INSERT INTO shared.documents (tenant_id, title) VALUES ('echo-co', 'planted')")


def test_no_tenant_context_no_rows_and_no_writes(env):
    router = env.pooled()
    # The router on its own holds no privilege on tenant data.
    for statement in ("SELECT * FROM shared.documents", f"SELECT * FROM {role('alpha')}.documents"):
        with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, None):
            router.execute(statement)
    # A tenant role without app.tenant_id: nothing visible, nothing writable.
    with tenant_tx(router, None, as_role=role("delta")):
        assert titles(router, "SELECT title FROM shared.documents") == []
        assert router.execute("UPDATE shared.documents SET title = 'x'").rowcount == 0
    with (
        pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
        tenant_tx(router, None, as_role=role("delta")),
    ):
        router.execute("INSERT INTO shared.documents (title) VALUES ('orphan')")
    # Even a role exempt from RLS (the superuser) cannot write a row without a tenant.
    with pytest.raises(errors.NotNullViolation):
        env.superuser().execute("INSERT INTO shared.documents (title) VALUES ('orphan')")


def test_pooled_connection_never_carries_a_tenant_into_the_next_transaction(env):
    """One server connection, transactions of different tenants back to back: what PgBouncer
    in transaction mode does to the router's connections."""
    conn = env.pooled()
    sequence = ["alpha", "delta", None, "bravo-co", "echo-co", "alpha", None, "delta", "bravo-co"]
    for previous, tenant in zip([None, *sequence[:-1]], sequence, strict=True):
        with tenant_tx(conn, tenant):
            state = conn.execute("SELECT current_user, coalesce(current_setting('app.tenant_id', true), '')").fetchone()
            assert state == ((role(tenant), tenant) if tenant else ("tenant_router", ""))
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


def test_the_pooler_discards_session_state_between_transactions(env):
    """A session-level SET ROLE (not LOCAL) would outlive the transaction on the server
    connection; the Pooler's server_reset_query (DISCARD ALL, always) takes it back."""
    conn = env.pooled()
    with conn.transaction():
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role("alpha"))))
        assert conn.execute("SELECT current_user").fetchone() == (role("alpha"),)
    with conn.transaction():
        assert conn.execute("SELECT pg_backend_pid()").fetchone() == pid  # the same server connection
        assert conn.execute("SELECT current_user").fetchone() == ("tenant_router",)


def test_non_tenant_roles_see_nothing(env):
    owner = env.direct(OWNER, "app-password")
    # FORCE ROW LEVEL SECURITY: the table owner has no policy, so no rows.
    assert titles(owner, "SELECT title FROM shared.documents") == []
    with pytest.raises(errors.InsufficientPrivilege):
        owner.execute(f"SELECT * FROM {role('alpha')}.documents")
    router = env.pooled()
    with tenant_tx(router, "delta", as_role="tenant_rls"):
        assert titles(router, "SELECT title FROM shared.documents") == []
    # A login role the platform did not make cannot even connect.
    env.superuser().execute("CREATE ROLE stranger LOGIN PASSWORD 'stranger-password'")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        env.direct("stranger", "stranger-password")


def test_the_metrics_exporter_may_connect_to_the_application_database(env):
    """CloudNativePG 1.30's exporter logs in as cnpg_metrics_exporter (a pg_monitor member) and
    skips databases it lacks CONNECT on (pkg/management/postgres/metrics/collector.go,
    getAllAccessibleDatabases: has_database_privilege(datname, 'CONNECT'))."""
    su = env.superuser()
    su.execute("CREATE ROLE cnpg_metrics_exporter LOGIN IN ROLE pg_monitor")
    assert su.execute("SELECT has_database_privilege('cnpg_metrics_exporter', 'app', 'CONNECT')").fetchone() == (True,)
    # Positive control: a login outside pg_monitor still has no CONNECT.
    su.execute("CREATE ROLE not_monitor LOGIN")
    assert su.execute("SELECT has_database_privilege('not_monitor', 'app', 'CONNECT')").fetchone() == (False,)


def test_router_cannot_become_an_enterprise_tenant(env):
    router = env.pooled()
    for tenant in ("charlie", "foxtrot"):
        with pytest.raises(errors.InsufficientPrivilege), tenant_tx(router, tenant):
            pass


def test_enterprise_tenant_uses_its_own_login_and_sees_only_its_data(env):
    charlie = env.enterprise("charlie")
    assert titles(charlie) == ["charlie one", "charlie two"]
    with pytest.raises(errors.InsufficientPrivilege):
        charlie.execute(f"SELECT * FROM {role('alpha')}.documents")
    with pytest.raises(errors.InsufficientPrivilege):
        charlie.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role("alpha"))))
    foxtrot = env.enterprise("foxtrot")
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
    env.apply(args_for(remaining, removed=("bravo-co",)))
    # Removed: data and role retained as a tombstone, and the computes' router lost access.
    assert su.execute(f"SELECT count(*) FROM {role('bravo-co')}.documents").fetchone() == (2,)
    with pytest.raises(errors.InsufficientPrivilege), tenant_tx(env.pooled(), "bravo-co"):
        pass
    # `ensure: absent` alone fails: CNPG's plain DROP ROLE / DROP SCHEMA refuse while the tenant owns objects.
    with pytest.raises(errors.DependentObjectsStillExist):
        env.apply(args_for(remaining, purge=("bravo-co",)))
    # purge_tenant refuses a tenant that is still configured...
    with pytest.raises(errors.RaiseException, match="still active"):
        su.execute("SELECT tenancy.purge_tenant('alpha')")
    # ...and empties a removed one, after which the rendered `ensure: absent` succeeds.
    su.execute("SELECT tenancy.purge_tenant('bravo-co')")
    env.apply(args_for(remaining, purge=("bravo-co",)))
    assert su.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role("bravo-co"),)).fetchone() is None
    assert su.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (role("bravo-co"),)).fetchone() is None
    assert su.execute(f"SELECT count(*) FROM {role('alpha')}.documents").fetchone() == (2,)


def test_purge_removes_an_rls_tenants_rows_only(env):
    su = env.superuser()
    remaining = [t for t in TENANTS if t["id"] not in ("bravo-co", "echo-co")]
    env.apply(args_for(remaining, removed=("echo-co",)))
    su.execute("SELECT tenancy.purge_tenant('echo-co')")
    env.apply(args_for(remaining, purge=("echo-co",)))
    counts = dict(su.execute("SELECT tenant_id, count(*) FROM shared.documents GROUP BY tenant_id").fetchall())
    assert counts == {"delta": 2, "foxtrot": 2}


def switching(phase: dict) -> list:
    """TENANTS with alpha and charlie given these settings (docs/layers/datastore.md, switching plans)."""
    return [{**t, **phase[t["id"]]} if t["id"] in phase else t for t in TENANTS]


def test_a_plan_switch_keeps_both_logins_working_until_its_second_phase():
    """Phase 1 (`previousPlan`) must let a tenant in both ways, whichever its computes' logins file
    says at that moment; phase 2 leaves only the new one. alpha: business → enterprise; charlie:
    enterprise → business."""
    with started() as cluster:
        cluster.apply(
            args_for(
                switching(
                    {
                        "alpha": {"plan": "enterprise", "previousPlan": "business"},
                        "charlie": {"plan": "business", "previousPlan": "enterprise"},
                    }
                )
            )
        )
        router = cluster.pooled()
        for tenant in ("alpha", "charlie"):
            with tenant_tx(router, tenant):
                assert titles(router) == [f"{tenant} one", f"{tenant} two"]
            assert titles(cluster.enterprise(tenant)) == [f"{tenant} one", f"{tenant} two"]

        cluster.apply(args_for(switching({"alpha": {"plan": "enterprise"}, "charlie": {"plan": "business"}})))
        assert titles(cluster.enterprise("alpha")) == ["alpha one", "alpha two"]
        with pytest.raises(errors.InsufficientPrivilege), tenant_tx(cluster.pooled(), "alpha"):
            pass
        router = cluster.pooled()
        with tenant_tx(router, "charlie"):
            assert titles(router) == ["charlie one", "charlie two"]
        # Straight to the server: PgBouncer may still hold a server connection charlie opened in phase 1.
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
            cluster.direct(role("charlie"), tenant_password(MASTER, "charlie", 0))
