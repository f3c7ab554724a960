-- Template for the tables of a `schema` tenant. The application's migrations run it once
-- per tenant, inside a transaction that began with the tenant prologue (docs/layers/datastore.md):
--     SET LOCAL ROLE tenant_<id>;
--     SET LOCAL search_path = tenant_<id>;
-- The tenant's role then owns the tables it creates in schema tenant_<id> (created by
-- CloudNativePG from the Database object, owned by the database owner, USAGE and CREATE
-- granted to the tenant by bootstrap.sql), and unqualified names resolve there only.

CREATE TABLE IF NOT EXISTS documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title text NOT NULL,
  body text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
