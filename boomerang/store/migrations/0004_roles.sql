-- Roles are cluster-wide; create them only if missing, tolerating a second
-- database migrating at the same moment.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'boomerang_writer') THEN
        BEGIN
            CREATE ROLE boomerang_writer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'boomerang_customer') THEN
        BEGIN
            CREATE ROLE boomerang_customer NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$$;

-- Writer: appends to the ledger, may read it, never change it.
GRANT SELECT, INSERT ON ledger, ledger_keys TO boomerang_writer;
GRANT SELECT, INSERT, UPDATE ON ledger_heads TO boomerang_writer;
GRANT SELECT ON ledger_retention_cuts TO boomerang_writer;
GRANT SELECT, INSERT ON charter TO boomerang_writer;
GRANT SELECT, INSERT, UPDATE ON runs, approvals TO boomerang_writer;
GRANT SELECT ON progress TO boomerang_writer;
GRANT EXECUTE ON FUNCTION boomerang_ensure_ledger_partition(timestamptz) TO boomerang_writer;

-- Customer: the Charter (and the feed view over it), own tenant only.
GRANT SELECT ON charter, progress TO boomerang_customer;

ALTER TABLE charter ENABLE ROW LEVEL SECURITY;
CREATE POLICY charter_writer ON charter TO boomerang_writer USING (true) WITH CHECK (true);
-- Fails closed: with no boomerang.tenant set, current_setting(..., true) is
-- NULL (or '' after a SET LOCAL ended) and matches no row.
CREATE POLICY charter_customer_tenant ON charter FOR SELECT TO boomerang_customer
    USING (tenant = current_setting('boomerang.tenant', true));
