-- The Ledger: every field of every event, costs included; append-only and
-- hash-chained per stream (= run id). Partitioned by month of recorded_at so
-- that rows past the 7-year retention leave by DROP of a whole partition,
-- never by DELETE (see boomerang/store/retention.py).

CREATE TABLE ledger (
    stream              text             NOT NULL,
    seq                 bigint           NOT NULL CHECK (seq >= 1),
    prev_hash           text             NOT NULL,
    row_hash            text             NOT NULL,
    event_key           text             NOT NULL,
    run_id              text             NOT NULL,
    tenant              text             NOT NULL,
    kind                text             NOT NULL,
    occurred_at         timestamptz      NOT NULL,
    recorded_at         timestamptz      NOT NULL,
    status              text             NOT NULL,
    phase               text,
    checkpoint          text,
    boomer_ang_id       text,
    task_type           text,
    execution_time_s    double precision,
    message             text             NOT NULL,
    project_id          text,
    deadline            timestamptz,
    decision            text,
    attempt             integer          NOT NULL,
    approver            text,
    gpu_seconds         numeric,
    gpu_type            text,
    gpu_cost            numeric,
    cpu_cost            numeric,
    memory_cost         numeric,
    llm_cost            numeric,
    total_cost          numeric,
    provider            text,
    model_name          text,
    input_tokens        bigint,
    output_tokens       bigint,
    price_table_version text,
    details             jsonb            NOT NULL
) PARTITION BY RANGE (recorded_at);

CREATE INDEX ledger_stream_seq ON ledger (stream, seq);
CREATE INDEX ledger_run_id ON ledger (run_id);

-- A unique index on a partitioned table must include the partition key, so the
-- global uniqueness of event_key and of (stream, seq) lives here. Kept forever
-- (a few dozen bytes a row): a key stays deduplicated after its row expires.
CREATE TABLE ledger_keys (
    event_key   text        PRIMARY KEY,
    stream      text        NOT NULL,
    seq         bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,
    UNIQUE (stream, seq)
);

-- The head of each chain; its row lock serializes appends to one stream.
CREATE TABLE ledger_heads (
    stream      text        PRIMARY KEY,
    seq         bigint      NOT NULL,
    row_hash    text        NOT NULL,
    recorded_at timestamptz NOT NULL
);

-- Where retention cut each chain: the last dropped row, so verify can start
-- the surviving rows from its hash instead of from the genesis hash.
CREATE TABLE ledger_retention_cuts (
    stream      text        PRIMARY KEY,
    seq         bigint      NOT NULL,
    row_hash    text        NOT NULL,
    partition   text        NOT NULL,
    cut_at      timestamptz NOT NULL
);

CREATE FUNCTION boomerang_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'boomerang: % on % refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Row triggers on a partitioned table are cloned onto every partition.
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION boomerang_refuse_change();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION boomerang_refuse_change();
CREATE TRIGGER ledger_keys_append_only BEFORE UPDATE OR DELETE ON ledger_keys
    FOR EACH ROW EXECUTE FUNCTION boomerang_refuse_change();
CREATE TRIGGER ledger_keys_no_truncate BEFORE TRUNCATE ON ledger_keys
    FOR EACH STATEMENT EXECUTE FUNCTION boomerang_refuse_change();

-- Creates the monthly partition holding p_at (UTC month) if it is missing.
-- SECURITY DEFINER so the writer role can call it without owning DDL rights;
-- statement triggers are not cloned, so each partition gets its own TRUNCATE guard.
CREATE FUNCTION boomerang_ensure_ledger_partition(p_at timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    lo   timestamptz := date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    hi   timestamptz := lo + interval '1 month';
    name text := 'ledger_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
    IF to_regclass('public.' || name) IS NOT NULL THEN
        RETURN name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('boomerang.ledger_partition'));
    IF to_regclass('public.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE public.%I PARTITION OF public.ledger FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
        EXECUTE format('CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON public.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION boomerang_refuse_change()', name);
    END IF;
    RETURN name;
END
$$;
REVOKE ALL ON FUNCTION boomerang_ensure_ledger_partition(timestamptz) FROM PUBLIC;
