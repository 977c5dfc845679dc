-- Whether an agency shows life: its timeout (NULL: not watched), its last sign of life and what it
-- was, and whether it is reachable now (what agencies.reachability.v1 last said). The watch starts
-- when the timeout is set, so an agency is not unreachable before it had the time to show life.
ALTER TABLE notify.agencies
    ADD COLUMN liveness_timeout_s integer,
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN last_sign text,
    ADD COLUMN reachable boolean NOT NULL DEFAULT true,
    ADD COLUMN watched_since timestamptz NOT NULL DEFAULT now();
