-- One row per sweep item (workflows/sweep.py), written exactly once: the item's
-- activity inserts with ON CONFLICT DO NOTHING, and a retry that finds the row returns
-- it instead of running the item again. Large outputs live in the artifact store and
-- the row keeps its URI. Costs per attempt are in the Ledger; cost_usd here is the
-- item's counted attempt, for export.
CREATE TABLE sweep_results (
    sweep_id     text        NOT NULL,
    item_index   integer     NOT NULL CHECK (item_index >= 0),
    tenant       text        NOT NULL,
    batch        text,
    params       jsonb       NOT NULL,
    status       text        NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled')),
    output       jsonb,
    artifact_uri text,
    error        text,
    cost_usd     numeric(20, 10) NOT NULL DEFAULT 0,
    attempts     integer     NOT NULL DEFAULT 1,
    seconds      double precision,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sweep_id, item_index)
);

-- Rows are facts: a worker may add them, never change or remove them.
GRANT SELECT, INSERT ON sweep_results TO boomerang_writer;
