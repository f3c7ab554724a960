-- b2b-platform database bootstrap.
--
-- Runs once, as the superuser, inside the application database, right after initdb
-- (CloudNativePG `bootstrap.initdb.postInitApplicationSQLRefs`). Safe to run again.
--
-- Role layout (after bootstrap, the Cluster's `managed.roles` keeps it in sync):
--   tenant_router  LOGIN NOINHERIT. The computes' identity. Member of every business tenant's
--                  role but inherits none of their rights: it reaches tenant data only after
--                  `SET LOCAL ROLE tenant_<id>` inside a transaction, which COMMIT/ROLLBACK
--                  undoes, so PgBouncer transaction pooling cannot carry a tenant over.
--   tenant_<id>    One per tenant. NOLOGIN (business) or LOGIN with its own password and
--                  connection limit (enterprise). Owns schema tenant_<id> under `schema` isolation.
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
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO tenant_router, tenant_login', current_database());
END $$;

-- Nobody creates or reads anything in `public`: tenant tables live in tenant schemas or in
-- shared tables behind row-level security.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA IF NOT EXISTS tenancy;
REVOKE ALL ON SCHEMA tenancy FROM PUBLIC;
GRANT USAGE ON SCHEMA tenancy TO tenant_rls;

-- tenant id (a DNS label) -> role and schema name; the same rule as components/contracts.py.
CREATE OR REPLACE FUNCTION tenancy.role_of(tenant_id text) RETURNS name
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT pg_catalog.concat('tenant_', pg_catalog.replace(tenant_id, '-', '_'))::name $$;

-- The tenant of the current transaction, or NULL. Both halves must agree: `app.tenant_id`
-- set (locally) AND the current role being that tenant's role. A forged setting, a missing
-- SET ROLE, or a setting left over from another tenant all give NULL, and NULL matches no row.
CREATE OR REPLACE FUNCTION tenancy.current_tenant() RETURNS text
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$
    SELECT s.t
    FROM (SELECT NULLIF(pg_catalog.current_setting('app.tenant_id', true), '') AS t) AS s
    WHERE tenancy.role_of(s.t) OPERATOR(pg_catalog.=) CURRENT_USER
  $$;

-- Put a shared table under tenant isolation. Called by the table's owner (the database
-- owner, in the application's migrations) once per table with a `tenant_id text` column.
CREATE OR REPLACE FUNCTION tenancy.enable_rls(tbl regclass) RETURNS void
  LANGUAGE plpgsql
  AS $$
  BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    -- FORCE: the owner is not exempt either; without a policy for it, it sees no rows.
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %s', tbl);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %s AS PERMISSIVE FOR ALL TO tenant_rls '
      'USING (tenant_id = tenancy.current_tenant()) '
      'WITH CHECK (tenant_id = tenancy.current_tenant())', tbl);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tenant_rls', tbl);
  END
  $$;

-- Drop what a removed tenant left behind. Run by the superuser (e.g. `kubectl cnpg psql`)
-- before the id goes into `purgeTenants`: CloudNativePG's `ensure: absent` runs a plain
-- DROP SCHEMA / DROP ROLE, which refuse to drop a schema with tables or a role owning objects.
CREATE OR REPLACE FUNCTION tenancy.purge_tenant(tenant_id text) RETURNS void
  LANGUAGE plpgsql
  AS $$
  DECLARE
    tenant_role name := tenancy.role_of(tenant_id);
    shared_table record;
  BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = tenant_role)
       AND pg_catalog.pg_has_role('tenant_router', tenant_role, 'MEMBER') THEN
      RAISE EXCEPTION 'tenant % is still active (tenant_router is a member of %); remove it from the stack''s tenants first', tenant_id, tenant_role;
    END IF;
    FOR shared_table IN
      SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_catalog.pg_policies WHERE policyname = 'tenant_isolation'
    LOOP
      EXECUTE format('DELETE FROM %s WHERE tenant_id = $1', shared_table.name) USING tenant_id;
    END LOOP;
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', tenant_role);
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = tenant_role) THEN
      EXECUTE format('DROP OWNED BY %I', tenant_role);
    END IF;
  END
  $$;

REVOKE ALL ON FUNCTION tenancy.role_of(text), tenancy.current_tenant(), tenancy.enable_rls(regclass), tenancy.purge_tenant(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.role_of(text), tenancy.current_tenant() TO tenant_rls;
DO $$
BEGIN
  -- The database owner runs the application's migrations, which call enable_rls.
  EXECUTE format('GRANT USAGE ON SCHEMA tenancy TO %I', (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()));
  EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.enable_rls(regclass), tenancy.current_tenant(), tenancy.role_of(text) TO %I', (SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()));
END $$;
