-- The Charter: only what a customer may see. There is deliberately no jsonb,
-- cost, provider or model column: a leaked field has nowhere to land.
CREATE TABLE charter (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_key        text             NOT NULL UNIQUE,
    run_id           text             NOT NULL,
    tenant           text             NOT NULL,
    project_id       text,
    event            text             NOT NULL,
    status           text             NOT NULL,
    phase            text,
    checkpoint       text,
    boomer_ang_id    text,
    task_type        text,
    execution_time_s double precision,
    message          text             NOT NULL,
    deadline         timestamptz,
    decision         text,
    occurred_at      timestamptz      NOT NULL,
    recorded_at      timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX charter_tenant_run ON charter (tenant, run_id, occurred_at);
