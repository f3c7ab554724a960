-- b2b-platform tenancy: roles' database rights, the `tenancy` schema and its functions.
--
-- Migration 0001: the former sql/bootstrap.sql, which initdb ran. Idempotent, so it converges a
-- database made by any earlier bootstrap.sql. Applied once, as `postgres`, in the application
-- database, by the migrations Job (components/migrations.py). Never edit it once released:
-- the runner refuses a changed applied migration; put changes in the next file.
--
-- Role layout (after bootstrap, the Cluster's `managed.roles` keeps it in sync):
--   tenant_router  LOGIN NOINHERIT. The computes' identity. Member of every business tenant's
--                  role but inherits none of their rights: it reaches tenant data only after
--                  `SET LOCAL ROLE tenant_<id>` inside a transaction, which COMMIT/ROLLBACK
--                  undoes, so PgBouncer transaction pooling cannot carry a tenant over.
--   tenant_<id>    One per tenant. NOLOGIN (business) or LOGIN with its own password and
--                  connection limit (enterprise). Under `schema` isolation it has USAGE and CREATE
--                  on schema tenant_<id>, which the database owner owns (so the tenant cannot
--                  grant it to anyone), and owns the tables it creates there. A removed tenant's
--                  role stays as a tombstone until purged: NOLOGIN, no password, no memberships,
--                  connection limit 0.
--   tenant_rls     NOLOGIN group of the `rls` tenants: the only grantee of shared tables.
--   tenant_login   NOLOGIN group of enterprise login roles; pg_hba rejects members whose
--                  tenant is no longer configured.

DO $$
DECLARE
  grp text;
BEGIN
  FOREACH grp IN ARRAY ARRAY['tenant_router', 'tenant_rls', 'tenant_login'] LOOP
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = grp) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', grp);
    END IF;
  END LOOP;
  -- Only platform roles may connect, so a role made by hand cannot even list the catalogs.
  -- pg_monitor too: CloudNativePG 1.30's metrics exporter (cnpg_metrics_exporter, a pg_monitor
  -- member) skips every database it lacks CONNECT on (pkg/management/postgres/metrics/collector.go).
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO tenant_router, tenant_login, pg_monitor', current_database());
END $$;

-- Nobody creates or reads anything in `public`: tenant tables live in tenant schemas or in
-- shared tables behind row-level security.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS tenancy;
REVOKE ALL ON SCHEMA tenancy FROM PUBLIC;
GRANT USAGE ON SCHEMA tenancy TO tenant_rls;

-- Every function below pins search_path: a caller's search_path (a pooled connection may carry
-- one a tenant left behind) must never choose the functions and operators they run.

-- tenant id (a DNS label) -> role and schema name; the same rule as components/contracts.py.
CREATE OR REPLACE FUNCTION tenancy.role_of(tenant_id text) RETURNS name
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
  AS $$ SELECT pg_catalog.concat('tenant_', pg_catalog.replace(tenant_id, '-', '_'))::name $$;

-- The tenant of the current transaction, or NULL. Both halves must agree: `app.tenant_id`
-- set (locally) AND the current role being that tenant's role. A forged setting, a missing
-- SET ROLE, or a setting left over from another tenant all give NULL, and NULL matches no row.
CREATE OR REPLACE FUNCTION tenancy.current_tenant() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT s.t
    FROM (SELECT pg_catalog.current_setting('app.tenant_id', true) AS t) AS s
    WHERE s.t OPERATOR(pg_catalog.<>) ''
      AND tenancy.role_of(s.t) OPERATOR(pg_catalog.=) CURRENT_USER
  $$;

-- Shared tables under tenant isolation, recorded by enable_rls: what purge_tenant may delete
-- from, once it checked each is still the database owner's.
CREATE TABLE IF NOT EXISTS tenancy.shared_tables (tbl regclass PRIMARY KEY);
REVOKE ALL ON tenancy.shared_tables FROM PUBLIC;

-- Put a shared table under tenant isolation. Called by the table's owner (the database
-- owner, in the application's migrations) once per table with a `tenant_id text` column.
CREATE OR REPLACE FUNCTION tenancy.enable_rls(tbl regclass) RETURNS void
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
  BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    -- FORCE: the owner is not exempt either; without a policy for it, it sees no rows.
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
    -- (SELECT ...): evaluated once per statement, and usable as an index condition.
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO tenant_rls '
      'USING (tenant_id OPERATOR(pg_catalog.=) (SELECT tenancy.current_tenant())) '
      'WITH CHECK (tenant_id OPERATOR(pg_catalog.=) (SELECT tenancy.current_tenant()))', tbl);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tenant_rls', tbl);
    INSERT INTO tenancy.shared_tables VALUES (tbl) ON CONFLICT DO NOTHING;
  END
  $$;

-- Indexes on shared tables whose first column is not tenant_id. Row-level security filters
-- after the index fetch, so such an index lets a range probe count (EXPLAIN ANALYZE) and
-- bisect other tenants' values. Migrations assert this returns nothing.
CREATE OR REPLACE FUNCTION tenancy.leaky_indexes() RETURNS SETOF regclass
  LANGUAGE sql STABLE
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT i.indexrelid::regclass
    FROM tenancy.shared_tables AS s
    JOIN pg_catalog.pg_index AS i ON i.indrelid OPERATOR(pg_catalog.=) s.tbl
    LEFT JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
    WHERE a.attname IS DISTINCT FROM 'tenant_id'
    ORDER BY 1
  $$;

-- A removed tenant's role as rendered until it is purged (components/datastore.py
-- tombstone_role): no login, no connections, no memberships either way. True too when the
-- role is gone.
CREATE OR REPLACE FUNCTION tenancy.is_tombstone(tenant_id text) RETURNS boolean
  LANGUAGE sql STABLE STRICT
  SET search_path = pg_catalog, pg_temp
  AS $$
    SELECT NOT EXISTS (
      SELECT FROM pg_catalog.pg_roles AS r
      WHERE r.rolname OPERATOR(pg_catalog.=) tenancy.role_of(tenant_id)
        AND (r.rolcanlogin OR r.rolconnlimit OPERATOR(pg_catalog.<>) 0
             OR EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m
                        WHERE m.member OPERATOR(pg_catalog.=) r.oid OR m.roleid OPERATOR(pg_catalog.=) r.oid)))
  $$;

-- Offboarding: end a tombstoned tenant's own-login sessions (enterprise), which keep their
-- access after the role loses LOGIN. Returns how many were ended. Business tenants have no
-- sessions of their own: the router lost SET ROLE with the membership.
CREATE OR REPLACE FUNCTION tenancy.end_sessions(tenant_id text) RETURNS integer
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
  DECLARE
    ended integer := 0;
    session record;
  BEGIN
    IF NOT tenancy.is_tombstone(tenant_id) THEN
      RAISE EXCEPTION 'tenant % is not removed: its role % still has a login, connections or memberships; move it from tenants to removedTenants and run pulumi up first', tenant_id, tenancy.role_of(tenant_id);
    END IF;
    -- A loop, not a WHERE beside pg_terminate_backend(): the planner may order conditions as it likes.
    FOR session IN
      SELECT pid FROM pg_catalog.pg_stat_activity WHERE usename OPERATOR(pg_catalog.=) tenancy.role_of(tenant_id)
    LOOP
      IF pg_catalog.pg_terminate_backend(session.pid, 5000) THEN  -- waits up to 5 s for it to end
        ended := ended OPERATOR(pg_catalog.+) 1;
      END IF;
    END LOOP;
    RETURN ended;
  END
  $$;

-- Drop what a removed tenant left behind. Run by the superuser (e.g. `kubectl cnpg psql`)
-- after the tenant moved to `removedTenants` and before its id goes into `purgeTenants`:
-- CloudNativePG's `ensure: absent` runs a plain DROP SCHEMA / DROP ROLE, which refuse to drop
-- a schema with tables or a role owning objects.
-- It runs as the superuser, so it touches no code a tenant wrote: rows are deleted only from
-- the registered shared tables (tenancy.shared_tables), owned by the database owner, with no
-- user trigger or rule on them or their partitions; the tenant's own schema and objects are
-- dropped, never written to.
CREATE OR REPLACE FUNCTION tenancy.purge_tenant(tenant_id text) RETURNS void
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
  DECLARE
    tenant_role name := tenancy.role_of(tenant_id);
    db_owner oid := (SELECT datdba FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database());
    shared_table regclass;
  BEGIN
    IF NOT tenancy.is_tombstone(tenant_id) THEN
      RAISE EXCEPTION 'tenant % is still active (role % has a login, connections or memberships); move it from tenants to removedTenants and run pulumi up first', tenant_id, tenant_role;
    END IF;
    -- A shared table enable_rls did not record (enabled before the registry existed) would keep
    -- the tenant's rows: refuse until the migrations ran enable_rls again.
    SELECT p.polrelid INTO shared_table FROM pg_catalog.pg_policy AS p
    JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) p.polrelid
    WHERE p.polname OPERATOR(pg_catalog.=) 'tenant_isolation' AND c.relowner OPERATOR(pg_catalog.=) db_owner
      AND p.polrelid NOT IN (SELECT s.tbl FROM tenancy.shared_tables AS s)
    LIMIT 1;
    IF shared_table IS NOT NULL THEN
      RAISE EXCEPTION 'shared table % is not registered in tenancy.shared_tables; run tenancy.enable_rls(''%'') (the migrations) again first', shared_table, shared_table;
    END IF;
    FOR shared_table IN
      SELECT s.tbl FROM tenancy.shared_tables AS s
    LOOP
      IF EXISTS (
        SELECT FROM (SELECT shared_table AS relid UNION SELECT relid FROM pg_catalog.pg_partition_tree(shared_table)) AS p
        JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) p.relid
        WHERE c.relowner OPERATOR(pg_catalog.<>) db_owner
           OR EXISTS (SELECT FROM pg_catalog.pg_trigger AS t WHERE t.tgrelid OPERATOR(pg_catalog.=) p.relid AND NOT t.tgisinternal)
           OR EXISTS (SELECT FROM pg_catalog.pg_rewrite AS r WHERE r.ev_class OPERATOR(pg_catalog.=) p.relid)
      ) OR EXISTS (SELECT FROM pg_catalog.pg_inherits AS h WHERE h.inhparent OPERATOR(pg_catalog.=) shared_table)
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_partitioned_table AS pt WHERE pt.partrelid OPERATOR(pg_catalog.=) shared_table) THEN
        RAISE EXCEPTION 'refusing to purge from %: a shared table must be owned by the database owner, with no triggers, rules or inheritance children', shared_table;
      END IF;
      EXECUTE format('DELETE FROM %s WHERE tenant_id OPERATOR(pg_catalog.=) $1', shared_table) USING tenant_id;
    END LOOP;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', tenant_role);
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) tenant_role) THEN
      EXECUTE format('DROP OWNED BY %I', tenant_role);
    END IF;
  END
  $$;

-- Tenant schemas: CloudNativePG creates them owned by the database owner (components/datastore.py
-- database_schemas); this gives the tenant of the same name what it needs there, and takes back
-- anything granted on the schema before (a schema its tenant used to own). A schema whose role
-- does not exist yet fails; CloudNativePG 1.30 marks the Database failed and retries every 30 s
-- (internal/management/controller/database_controller.go), by when the role reconciler made it.
CREATE OR REPLACE FUNCTION tenancy.grant_tenant_schemas() RETURNS event_trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
  DECLARE
    target record;
  BEGIN
    FOR target IN
      SELECT n.nspname
      FROM pg_catalog.pg_event_trigger_ddl_commands() AS cmd
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) cmd.objid
      WHERE cmd.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::regclass
        AND n.nspname LIKE 'tenant\_%'
        AND n.nspname NOT IN ('tenant_router', 'tenant_rls', 'tenant_login')
    LOOP
      IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) target.nspname) THEN
        RAISE EXCEPTION 'schema % has no role of the same name yet', target.nspname;
      END IF;
      EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', target.nspname);
      EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', target.nspname, target.nspname);
    END LOOP;
  END
  $$;
DROP EVENT TRIGGER IF EXISTS tenancy_grant_tenant_schemas;
CREATE EVENT TRIGGER tenancy_grant_tenant_schemas ON ddl_command_end
  WHEN TAG IN ('CREATE SCHEMA', 'ALTER SCHEMA')
  EXECUTE FUNCTION tenancy.grant_tenant_schemas();

REVOKE ALL ON FUNCTION tenancy.role_of(text), tenancy.current_tenant(), tenancy.enable_rls(regclass),
  tenancy.leaky_indexes(), tenancy.is_tombstone(text), tenancy.end_sessions(text), tenancy.purge_tenant(text),
  tenancy.grant_tenant_schemas() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.role_of(text), tenancy.current_tenant() TO tenant_rls;
DO $$
BEGIN
  -- The database owner runs the application's migrations, which call enable_rls and leaky_indexes.
  EXECUTE format('GRANT USAGE ON SCHEMA tenancy TO %I', (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()));
  EXECUTE format('GRANT SELECT, INSERT ON tenancy.shared_tables TO %I', (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()));
  EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.enable_rls(regclass), tenancy.leaky_indexes(), tenancy.current_tenant(), tenancy.role_of(text) TO %I', (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()));
END $$;
