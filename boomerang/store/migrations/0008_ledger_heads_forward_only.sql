-- The writer role must move a stream's head (each append does), but never back:
-- a rewound head would let the next append reuse seqs and hide the rows after it.
-- Every role is held to it (a superuser can switch triggers off; `ledger verify`
-- cross-checks the head against the rows, and the anchors outside the database
-- catch a consistent rewrite).
CREATE FUNCTION boomerang_ledger_heads_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger_heads rows are never deleted (stream %)', OLD.stream
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.stream <> OLD.stream OR NEW.seq < OLD.seq OR (NEW.seq = OLD.seq AND NEW.row_hash <> OLD.row_hash) THEN
        RAISE EXCEPTION 'ledger_heads only moves forward (stream %, seq % -> %)', OLD.stream, OLD.seq, NEW.seq
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER ledger_heads_forward_only BEFORE UPDATE OR DELETE ON ledger_heads
    FOR EACH ROW EXECUTE FUNCTION boomerang_ledger_heads_forward();

CREATE FUNCTION boomerang_ledger_heads_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_heads is never truncated' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER ledger_heads_no_truncate BEFORE TRUNCATE ON ledger_heads
    FOR EACH STATEMENT EXECUTE FUNCTION boomerang_ledger_heads_no_truncate();
