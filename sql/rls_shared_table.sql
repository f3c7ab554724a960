-- Template for a table shared by the `rls` tenants. Run by the database owner (the
-- application's migrations). Copy it for each shared table: keep the `tenant_id` column,
-- its default, and the enable_rls call.

CREATE SCHEMA IF NOT EXISTS shared;
REVOKE ALL ON SCHEMA shared FROM PUBLIC;
GRANT USAGE ON SCHEMA shared TO tenant_rls;

CREATE TABLE IF NOT EXISTS shared.documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Filled from the transaction's tenant. Without one the policy rejects the row, and
  -- NOT NULL rejects it even for a role exempt from row-level security.
  tenant_id text NOT NULL DEFAULT tenancy.current_tenant(),
  title text NOT NULL,
  body text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS documents_tenant_id_idx ON shared.documents (tenant_id);

SELECT tenancy.enable_rls('shared.documents');
