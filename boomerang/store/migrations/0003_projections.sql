-- Projections for dashboards and the approval inbox, written in the same
-- transaction as the Charter and Ledger rows they are derived from.
CREATE TABLE runs (
    run_id        text PRIMARY KEY,
    tenant        text        NOT NULL,
    project_id    text,
    kind          text        NOT NULL,
    status        text        NOT NULL,
    current_phase text,
    started_at    timestamptz,
    completed_at  timestamptz,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX runs_tenant_status ON runs (tenant, status);

CREATE TABLE approvals (
    run_id     text        NOT NULL,
    checkpoint text        NOT NULL,
    tenant     text        NOT NULL,
    phase      text,
    status     text        NOT NULL CHECK (status IN (
        'pending', 'approved', 'rejected', 'iterate', 'pivot', 'override_proceed', 'expired')),
    opened_at  timestamptz NOT NULL,
    deadline   timestamptz,
    decided_at timestamptz,
    decided_by text,
    decision   text,
    PRIMARY KEY (run_id, checkpoint)
);
CREATE INDEX approvals_pending ON approvals (tenant, opened_at) WHERE status = 'pending';

-- The event feed is the Charter read in time order; a view, not a copy, so it
-- can never disagree with it and inherits the Charter's row-level security.
CREATE VIEW progress WITH (security_invoker = true) AS
    SELECT id, run_id, tenant, project_id, event, status, phase, checkpoint,
           message, occurred_at, recorded_at
    FROM charter;
