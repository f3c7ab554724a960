-- Template for the tables of a `schema` tenant. The application's migrations run it once
-- per tenant, inside a transaction that began with
--     SET LOCAL ROLE tenant_<id>;
-- The tenant's role then owns the tables, and the default search_path ("$user", public)
-- resolves unqualified names to schema tenant_<id> (created by CloudNativePG from the
-- Database object) because "$user" follows the current role. No SET search_path needed.

CREATE TABLE IF NOT EXISTS documents (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title text NOT NULL,
  body text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
