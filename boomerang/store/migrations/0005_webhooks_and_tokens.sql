-- Outgoing webhooks: every delivery attempt, and the deliveries that gave up.
-- One row per (webhook, attempt): a retried write of the same attempt adds nothing.
CREATE TABLE webhook_deliveries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id  text        NOT NULL,
    run_id      text        NOT NULL,
    tenant      text        NOT NULL,
    url         text        NOT NULL,
    event       text        NOT NULL,
    attempt     integer     NOT NULL CHECK (attempt >= 1),
    status      text        NOT NULL CHECK (status IN ('delivered', 'retrying', 'disabled', 'failed')),
    status_code integer,
    error       text,
    duration_ms integer,
    at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, attempt)
);
CREATE INDEX webhook_deliveries_run ON webhook_deliveries (run_id, at);

CREATE TABLE webhook_dead_letters (
    webhook_id       text PRIMARY KEY,
    run_id           text        NOT NULL,
    tenant           text        NOT NULL,
    url              text        NOT NULL,
    event            text        NOT NULL,
    attempts         integer     NOT NULL,
    last_status_code integer,
    reason           text        NOT NULL,
    body             jsonb       NOT NULL,
    dead_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dead_letters_tenant ON webhook_dead_letters (tenant, dead_at);

-- Incoming webhooks: ids already accepted, so a replay inside the timestamp
-- tolerance is dropped. Rows older than the tolerance may go: a replay of them
-- is refused by its stale timestamp before this table is consulted.
CREATE TABLE webhook_receipts (
    webhook_id  text PRIMARY KEY,
    source      text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_receipts_age ON webhook_receipts (received_at);

-- API bearer tokens. Only a SHA-256 of the token is kept; `prefix` is the
-- public part of the token that finds the row, the hash is then compared in
-- constant time. A revoked token keeps its row (who had access, and when).
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix      text        NOT NULL UNIQUE,
    token_hash  text        NOT NULL,
    tenant      text        NOT NULL,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('approver', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
-- A name is unique among a tenant's live tokens; a revoked name may be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (tenant, name) WHERE revoked_at IS NULL;

GRANT SELECT, INSERT ON webhook_deliveries, webhook_dead_letters TO boomerang_writer;
GRANT SELECT, INSERT, DELETE ON webhook_receipts TO boomerang_writer;
