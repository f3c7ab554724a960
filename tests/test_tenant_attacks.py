"""Tenancy under attack: the operations around isolation, tried as a tenant would.

Each test starts its own PostgreSQL 18 behind PgBouncer (tests/tenancy_harness.py), laid out
and migrated as production is, tries one attack of issue 17 and a positive control showing
the attack was really tried (the legitimate path works, the pooled server connection was
really shared, the trap was really armed). Validation-only attacks need no server.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from conftest import seed
from psycopg import errors
from tenancy_harness import OWNER, RLS_TENANTS, TENANTS, args_for, role, shipped, started, tenant_tx, titles

from components.blueprint import parse_blueprint
from components.contracts import PLATFORM_ROLES, TENANT_ROLE_PREFIX
from components.datastore import managed_roles
from components.problems import InvalidInput
from components.settings import cross_check_settings, parse_settings


@pytest.fixture
def env():
    with started() as cluster:
        yield cluster


def without(*ids: str) -> list:
    return [t for t in TENANTS if t["id"] not in ids]


def backend(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


# 1. The purge runs as the superuser: it must not run code a tenant wrote.


def test_purge_runs_no_trigger_a_tenant_planted(env):
    alpha = env.pooled()
    with tenant_tx(alpha, "alpha"):
        # A table that looks shared (a policy named tenant_isolation) with a statement trigger
        # that, run by the superuser, would copy every tenant's rows and make alpha superuser.
        alpha.execute("CREATE TABLE bait (tenant_id text)")
        alpha.execute("CREATE TABLE loot (title text)")
        alpha.execute("ALTER TABLE bait ENABLE ROW LEVEL SECURITY")
        alpha.execute("CREATE POLICY tenant_isolation ON bait USING (true)")
        alpha.execute(
            "CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO tenant_alpha.loot SELECT title FROM shared.documents; "
            "ALTER ROLE tenant_alpha SUPERUSER; RETURN NULL; END $$"
        )
        alpha.execute("CREATE TRIGGER steal AFTER DELETE ON bait FOR EACH STATEMENT EXECUTE FUNCTION steal()")
    env.apply(args_for(without("echo-co"), removed=("echo-co",)))
    su = env.superuser()
    su.execute("SELECT tenancy.purge_tenant('echo-co')")
    assert su.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'tenant_alpha'").fetchone() == (False,)
    assert su.execute("SELECT count(*) FROM tenant_alpha.loot").fetchone() == (0,)
    # Positive control: the purge did its job on the real shared table.
    counts = dict(su.execute("SELECT tenant_id, count(*) FROM shared.documents GROUP BY tenant_id").fetchall())
    assert counts == {"delta": 2, "foxtrot": 2}


def test_purge_refuses_a_shared_table_with_a_trigger(env):
    owner = env.direct(OWNER, "app-password")
    owner.execute("CREATE FUNCTION shared.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
    owner.execute("CREATE TRIGGER noop AFTER DELETE ON shared.documents FOR EACH ROW EXECUTE FUNCTION shared.noop()")
    env.apply(args_for(without("echo-co"), removed=("echo-co",)))
    su = env.superuser()
    with pytest.raises(errors.RaiseException, match="no triggers"):
        su.execute("SELECT tenancy.purge_tenant('echo-co')")
    owner.execute("DROP TRIGGER noop ON shared.documents")
    su.execute("SELECT tenancy.purge_tenant('echo-co')")  # positive control
    assert su.execute("SELECT count(*) FROM shared.documents WHERE tenant_id = 'echo-co'").fetchone() == (0,)


def test_purge_refuses_while_a_shared_table_is_unregistered(env):
    """Tables enabled before tenancy.shared_tables existed: the purge would skip their rows."""
    env.apply(args_for(without("echo-co"), removed=("echo-co",)))
    su = env.superuser()
    su.execute("DELETE FROM tenancy.shared_tables")
    with pytest.raises(errors.RaiseException, match="not registered"):
        su.execute("SELECT tenancy.purge_tenant('echo-co')")
    env.direct(OWNER, "app-password").execute("SELECT tenancy.enable_rls('shared.documents')")
    su.execute("SELECT tenancy.purge_tenant('echo-co')")  # positive control
    assert su.execute("SELECT count(*) FROM shared.documents WHERE tenant_id = 'echo-co'").fetchone() == (0,)


# 2. The purge refuses every configured tenant, enterprise ones included.


@pytest.mark.parametrize("tenant", ["charlie", "foxtrot", "alpha", "delta"])
def test_purge_refuses_a_configured_tenant(env, tenant):
    su = env.superuser()
    with pytest.raises(errors.RaiseException, match="still active"):
        su.execute("SELECT tenancy.purge_tenant(%s)", (tenant,))
    if tenant in RLS_TENANTS:
        assert su.execute("SELECT count(*) FROM shared.documents WHERE tenant_id = %s", (tenant,)).fetchone() == (2,)
    else:
        assert su.execute(f"SELECT count(*) FROM {role(tenant)}.documents").fetchone() == (2,)
    # Positive control: once removed (a tombstone), the same tenant is purged.
    env.apply(args_for(without(tenant), removed=(tenant,)))
    su.execute("SELECT tenancy.purge_tenant(%s)", (tenant,))
    assert su.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (role(tenant),)).fetchone() == (0,)


# 3. Offboarding shuts every door and the id cannot be handed to someone else.


def test_a_removed_enterprise_tenant_loses_its_open_sessions_and_its_login(env):
    charlie = env.enterprise("charlie")
    assert titles(charlie) == ["charlie one", "charlie two"]
    env.apply(args_for(without("charlie"), removed=("charlie",)))
    su = env.superuser()
    assert su.execute(
        "SELECT rolcanlogin, rolconnlimit, rolpassword IS NULL FROM pg_authid WHERE rolname = 'tenant_charlie'"
    ).fetchone() == (False, 0, True)
    assert su.execute(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid IN (m.member, m.roleid) WHERE r.rolname = "
        "'tenant_charlie'"
    ).fetchone() == (0,)
    # Offboarding's steps (docs/layers/datastore.md): end the role's server sessions, then restart the
    # Pooler, which otherwise keeps the login it cached from its auth query and holds the
    # tenant's clients waiting for a server connection (query_wait_timeout) instead of refusing them.
    assert su.execute("SELECT tenancy.end_sessions('charlie')").fetchone()[0] >= 1
    assert su.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'tenant_charlie'").fetchone() == (0,)
    env.restart_bouncer()
    with pytest.raises(psycopg.OperationalError):
        titles(charlie)
    with pytest.raises(psycopg.OperationalError, match=r"password authentication failed|no such user|not permitted"):
        env.enterprise("charlie")
    foxtrot = env.enterprise("foxtrot")
    # Positive control: another enterprise tenant logs in and works.
    with tenant_tx(foxtrot, "foxtrot"):
        assert titles(foxtrot, "SELECT title FROM shared.documents ORDER BY title") == ["foxtrot one", "foxtrot two"]


def test_end_sessions_refuses_a_configured_tenant(env):
    with pytest.raises(errors.RaiseException, match="not removed"):
        env.superuser().execute("SELECT tenancy.end_sessions('charlie')")
    assert titles(env.enterprise("charlie")) == ["charlie one", "charlie two"]


def validation_problems(settings: dict) -> list[str]:
    bp = parse_blueprint(seed())
    try:
        parsed = parse_settings(settings)
    except InvalidInput as exc:
        return [f"{p.path}: {p.message}" for p in exc.problems]
    return [f"{p.path}: {p.message}" for p in cross_check_settings(parsed, bp)]


def test_validate_refuses_reusing_a_removed_unpurged_id():
    tenant = {"id": "charlie", "plan": "enterprise", "isolation": "schema"}
    problems = validation_problems({"tenants": [tenant], "removedTenants": ["charlie"]})
    assert any(p.startswith("tenants[0].id:") and "not purged" in p for p in problems), problems
    problems = validation_problems({"removedTenants": ["charlie"], "purgeTenants": ["charlie"]})
    assert any(p.startswith("purgeTenants[0]:") and "removedTenants" in p for p in problems), problems
    # Positive controls: a removed id stays removed, a purged one may come back.
    assert validation_problems({"removedTenants": ["charlie"]}) == []
    assert validation_problems({"tenants": [tenant], "purgeTenants": []}) == []


def test_removed_tenants_render_tombstones():
    roles = {r["name"]: r for r in managed_roles(args_for(without("charlie", "alpha"), removed=("charlie", "alpha")))}
    for name in ("tenant_charlie", "tenant_alpha"):
        assert roles[name] | {"comment": ""} == {
            "name": name,
            "ensure": "present",
            "login": False,
            "inherit": False,
            "connectionLimit": 0,
            "disablePassword": True,
            "comment": "",
        }
    assert "tenant_alpha" not in roles["tenant_router"]["inRoles"]


# 4. The pooled server connection carries nothing from one tenant's transaction to the next.


def test_a_tenant_cannot_trap_the_next_tenants_unqualified_insert(env):
    alpha, bravo = env.pooled(), env.pooled()
    with tenant_tx(alpha, "alpha"):
        pid = backend(alpha)
        alpha.execute("GRANT USAGE ON SCHEMA tenant_alpha TO PUBLIC")  # refused (a warning): not its schema
        alpha.execute("GRANT SELECT, INSERT ON documents TO PUBLIC")
        alpha.execute("SET search_path = tenant_alpha")  # session level: outlives the transaction
    su = env.superuser()
    assert su.execute("SELECT has_schema_privilege('tenant_bravo_co', 'tenant_alpha', 'USAGE')").fetchone() == (False,)
    with tenant_tx(bravo, "bravo-co"):
        assert backend(bravo) == pid  # positive control: the same server connection
        bravo.execute("INSERT INTO documents (title) VALUES ('bravo secret')")
    assert su.execute("SELECT count(*) FROM tenant_alpha.documents WHERE title = 'bravo secret'").fetchone() == (0,)
    assert su.execute("SELECT count(*) FROM tenant_bravo_co.documents WHERE title = 'bravo secret'").fetchone() == (1,)


def test_a_schema_its_tenant_owned_is_taken_back_when_cloudnativepg_re_owns_it(env):
    """Upgrade: schemas rendered before were owned by their tenant, who could grant them away."""
    su = env.superuser()
    su.execute("ALTER SCHEMA tenant_alpha OWNER TO tenant_alpha")
    alpha = env.pooled()
    with tenant_tx(alpha, "alpha"):
        alpha.execute("GRANT USAGE ON SCHEMA tenant_alpha TO PUBLIC")
    assert su.execute("SELECT has_schema_privilege('tenant_bravo_co', 'tenant_alpha', 'USAGE')").fetchone() == (True,)
    env.apply(args_for(TENANTS))  # CloudNativePG: ALTER SCHEMA ... OWNER TO app
    assert su.execute("SELECT has_schema_privilege('tenant_bravo_co', 'tenant_alpha', 'USAGE')").fetchone() == (False,)
    with tenant_tx(alpha, "alpha"):  # positive control: the tenant keeps what it needs
        assert titles(alpha) == ["alpha one", "alpha two"]
        alpha.execute("CREATE TABLE notes (body text)")


def test_a_tenant_schema_waits_for_its_role(env):
    su = env.superuser()
    with pytest.raises(errors.RaiseException, match="no role of the same name"):
        su.execute("CREATE SCHEMA tenant_zulu AUTHORIZATION app")
    su.execute("CREATE ROLE tenant_zulu NOLOGIN")
    su.execute("CREATE SCHEMA tenant_zulu AUTHORIZATION app")
    assert su.execute("SELECT has_schema_privilege('tenant_zulu', 'tenant_zulu', 'USAGE, CREATE')").fetchone() == (
        True,
    )


def arm_operator_trap(conn: psycopg.Connection, schema: str) -> None:
    """An `=` on text in `schema` that records who ran it, into a table anyone may write."""
    conn.execute(f"CREATE TABLE {schema}.loot (who text, setting text)")
    conn.execute(f"GRANT INSERT ON {schema}.loot TO PUBLIC")
    conn.execute(
        f"CREATE FUNCTION {schema}.trap_eq(a text, b text) RETURNS boolean LANGUAGE sql AS "
        f"$$ INSERT INTO {schema}.loot SELECT current_user, current_setting('app.tenant_id', true); "
        "SELECT a OPERATOR(pg_catalog.=) b $$"
    )
    conn.execute(f"GRANT EXECUTE ON FUNCTION {schema}.trap_eq(text, text) TO PUBLIC")
    conn.execute(f"CREATE OPERATOR {schema}.= (LEFTARG = text, RIGHTARG = text, FUNCTION = {schema}.trap_eq)")


def test_a_tenant_operator_left_on_the_search_path_never_runs_as_the_next_tenant(env):
    alpha, delta = env.pooled(), env.pooled()
    with tenant_tx(alpha, "alpha"):
        pid = backend(alpha)
        arm_operator_trap(alpha, "tenant_alpha")
        alpha.execute("GRANT USAGE ON SCHEMA tenant_alpha TO PUBLIC")
        alpha.execute("SET search_path = tenant_alpha, pg_catalog")
        # Positive control: the trap is armed for whoever resolves `=` through this path.
        assert alpha.execute("SELECT 'x' = 'x'").fetchone() == (True,)
        alpha.execute("DELETE FROM loot")
    with tenant_tx(delta, "delta"):
        assert backend(delta) == pid
        assert titles(delta, "SELECT title FROM shared.documents ORDER BY title") == ["delta one", "delta two"]
    assert env.superuser().execute("SELECT who FROM tenant_alpha.loot").fetchall() == []


def test_tenancy_functions_ignore_the_callers_search_path(env):
    """The same trap without the pooler: a path set inside the transaction (a leftover the
    pooler missed, or an injection) must not choose the operators tenancy.* and the policy run."""
    su = env.superuser()
    su.execute("CREATE SCHEMA trap")
    su.execute("GRANT USAGE ON SCHEMA trap TO PUBLIC")
    arm_operator_trap(su, "trap")
    router = env.direct("tenant_router", "router-password")
    with tenant_tx(router, "delta"):
        router.execute("SET LOCAL search_path = trap, pg_catalog")
        assert router.execute("SELECT 'x' = 'x'").fetchone() == (True,)  # armed: this call is recorded
        assert titles(router, "SELECT title FROM shared.documents ORDER BY title") == ["delta one", "delta two"]
        router.execute("INSERT INTO shared.documents (title) VALUES ('delta three')")
    assert su.execute("SELECT count(*) FROM trap.loot").fetchone() == (1,)


def test_a_with_hold_cursor_does_not_survive_into_the_next_tenants_transaction(env):
    alpha, bravo = env.pooled(), env.pooled()
    with tenant_tx(alpha, "alpha"):
        pid = backend(alpha)
        alpha.execute("DECLARE held CURSOR WITH HOLD FOR SELECT title FROM documents ORDER BY title")
        # Positive control: the cursor works inside its own transaction.
        assert alpha.execute("FETCH 1 FROM held").fetchall() == [("alpha one",)]
    with tenant_tx(bravo, "bravo-co"):
        assert backend(bravo) == pid
    with pytest.raises(errors.InvalidCursorName), tenant_tx(bravo, "bravo-co"):
        bravo.execute("FETCH ALL FROM held")


# 5. Tenant ids whose role is a platform role.


@pytest.mark.parametrize("tenant_id", sorted(r.removeprefix(TENANT_ROLE_PREFIX) for r in PLATFORM_ROLES))
def test_platform_role_names_are_not_tenant_ids(tenant_id):
    problems = validation_problems({"tenants": [{"id": tenant_id, "plan": "business", "isolation": "rls"}]})
    assert any(p.startswith("tenants[0].id:") and "platform's own" in p for p in problems), problems


def test_every_platform_role_is_reserved_by_construction():
    """Render with no tenants: every role then rendered is the platform's, and its id is refused."""
    names = [r["name"] for r in managed_roles(args_for([]))]
    assert len(names) == len(set(names))
    for name in names:
        if not name.startswith(TENANT_ROLE_PREFIX):
            continue  # no tenant's role can be it: every tenant role has the prefix (the migrator)
        tid = name.removeprefix(TENANT_ROLE_PREFIX).replace("_", "-")
        assert validation_problems({"tenants": [{"id": tid, "plan": "business", "isolation": "rls"}]}), name
    # Positive control: a tenant id near them is fine.
    assert validation_problems({"tenants": [{"id": "routers", "plan": "business", "isolation": "rls"}]}) == []


# 6. Indexes on shared tables start with tenant_id.


def test_no_shared_index_lets_a_probe_touch_other_tenants_rows(env):
    """EXPLAIN ANALYZE counts the rows an index fetched and row-level security then removed:
    through an index not led by tenant_id, a probe for another tenant's key answers whether it
    exists, and range probes bisect other tenants' values."""
    su = env.superuser()
    (echo_id,) = su.execute("SELECT id::text FROM shared.documents WHERE tenant_id = 'echo-co' LIMIT 1").fetchone()
    (own_id,) = su.execute("SELECT id::text FROM shared.documents WHERE tenant_id = 'delta' LIMIT 1").fetchone()
    delta = env.pooled()
    probes = [(f"id = '{echo_id}'", 0), (f"id = '{own_id}'", 1), ("id > '00000000-0000-0000-0000-000000000000'", 2)]
    with tenant_tx(delta, "delta"):
        delta.execute("SET LOCAL enable_seqscan = off")
        delta.execute("SET LOCAL enable_bitmapscan = off")
        for probe, rows in probes:
            (plan,) = delta.execute(
                f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT title FROM shared.documents WHERE {probe}"
            ).fetchone()
            text = json.dumps(plan)
            assert '"Index Cond"' in text, text  # the probe went through an index...
            assert '"Rows Removed by Filter": 0' in text or "Rows Removed by Filter" not in text, text
            assert plan[0]["Plan"]["Actual Rows"] == rows, text  # ...and saw the tenant's own rows only


def test_leaky_indexes_lists_indexes_not_led_by_tenant_id(env):
    owner = env.direct(OWNER, "app-password")
    assert owner.execute("SELECT * FROM tenancy.leaky_indexes()").fetchall() == []
    owner.execute("CREATE INDEX documents_title_idx ON shared.documents (title)")
    assert owner.execute("SELECT i::text FROM tenancy.leaky_indexes() AS i").fetchall() == [
        ("shared.documents_title_idx",)
    ]
    # The shipped template's own check refuses to finish its migration.
    with pytest.raises(errors.RaiseException, match="must start with tenant_id"):
        owner.execute(shipped("rls_shared_table.sql"))
