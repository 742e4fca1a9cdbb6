-- In-flight compute slots shared by every worker (activities/slots.py): one row per
-- call that holds a slot (granted_at set) or waits for one (granted_at NULL). Rows
-- are leases: their holder renews expires_at while the call waits or runs, and a row
-- past it (its worker died) is reclaimed by the next scheduling round. Not history:
-- rows are deleted when the call ends; the Ledger keeps what was spent.
CREATE TABLE compute_slots (
    slot_id      text        PRIMARY KEY,
    holder       text        NOT NULL,
    tenant       text        NOT NULL,
    function     text        NOT NULL,
    gpu          text,
    requested_at timestamptz NOT NULL,
    granted_at   timestamptz,
    expires_at   timestamptz NOT NULL
);

CREATE INDEX compute_slots_expires ON compute_slots (expires_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON compute_slots TO boomerang_writer;
