-- The audit trail: append-only, one writer sequence, each row chained to the one before.
CREATE TABLE audit.events (
    seq         bigint PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    type        text NOT NULL,
    subject     text NOT NULL,
    agency_id   text,
    source      text NOT NULL,
    event_time  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    envelope    jsonb NOT NULL,
    prev_hash   bytea NOT NULL,
    row_hash    bytea NOT NULL
);
CREATE INDEX events_subject ON audit.events (subject, seq);
CREATE INDEX events_type_time ON audit.events (type, recorded_at);
CREATE INDEX events_agency ON audit.events (agency_id, seq) WHERE agency_id IS NOT NULL;

-- The head of the chain; locking this one row makes appends strictly sequential.
CREATE TABLE audit.chain_head (
    id   integer PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash bytea NOT NULL
);
INSERT INTO audit.chain_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Rows are never changed or removed: the database itself refuses it.
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.events is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON audit.events
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON audit.events
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
