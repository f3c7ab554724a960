-- Template for a table shared by the `rls` tenants. Run by the database owner (the
-- application's migrations). Copy it for each shared table: keep the `tenant_id` column,
-- its default, the enable_rls call, and the rule that every index (primary key and unique
-- constraints included) starts with tenant_id. Row-level security filters rows after the
-- index fetched them, so an index led by another column lets a tenant's range probes reach
-- other tenants' entries (EXPLAIN ANALYZE counts them); tenancy.leaky_indexes() lists the
-- offenders, and the migrations refuse to finish while it returns any.

CREATE SCHEMA IF NOT EXISTS shared;
REVOKE ALL ON SCHEMA shared FROM PUBLIC;
GRANT USAGE ON SCHEMA shared TO tenant_rls;

CREATE TABLE IF NOT EXISTS shared.documents (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  -- Filled from the transaction's tenant. Without one the policy rejects the row, and
  -- NOT NULL rejects it even for a role exempt from row-level security.
  tenant_id text NOT NULL DEFAULT tenancy.current_tenant(),
  title text NOT NULL,
  body text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS documents_tenant_title_idx ON shared.documents (tenant_id, title);

SELECT tenancy.enable_rls('shared.documents');

DO $$
BEGIN
  IF EXISTS (SELECT FROM tenancy.leaky_indexes()) THEN
    RAISE EXCEPTION 'indexes on shared tables must start with tenant_id: %',
      (SELECT string_agg(i::text, ', ') FROM tenancy.leaky_indexes() AS i);
  END IF;
END $$;
