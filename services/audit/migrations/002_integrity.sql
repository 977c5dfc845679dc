-- Integrity: rows commit to a redacted view plus a seal of the full event; a Merkle frontier in the
-- head; signed checkpoints; and a role that may only insert into the trail.
-- (Pre-release: the trail must be empty when this runs, since older rows were hashed differently.)
ALTER TABLE audit.events
    ADD COLUMN public_event jsonb NOT NULL,
    ADD COLUMN nonce bytea NOT NULL;

-- The perfect-subtree roots of the RFC 9162 tree over all rows, left to right.
ALTER TABLE audit.chain_head ADD COLUMN frontier bytea[] NOT NULL DEFAULT '{}';

CREATE TABLE audit.checkpoints (
    tree_size  bigint PRIMARY KEY,
    root_hash  bytea NOT NULL,
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON audit.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Only when AUDIT_SIGNING_KEY is not set: a development key, generated once.
CREATE TABLE audit.dev_signing_key (
    id   integer PRIMARY KEY CHECK (id = 1),
    seed bytea NOT NULL
);

-- Trail writes run as this role (SET LOCAL ROLE), so the database refuses updates and deletes by
-- privilege as well as by trigger. Roles are cluster-wide: another database may have made it.
DO $$
BEGIN
    CREATE ROLE audit_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;
GRANT USAGE ON SCHEMA audit TO audit_writer;
GRANT SELECT, INSERT ON audit.events, audit.checkpoints TO audit_writer;
GRANT SELECT, UPDATE ON audit.chain_head TO audit_writer;
GRANT audit_writer TO CURRENT_USER;
