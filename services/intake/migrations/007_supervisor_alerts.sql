-- A PSAP's supervisor channel, and the alerts waiting to reach it: one for each status callback that
-- failed for good, written in the transaction that records the failure, retried a bounded number of times.
ALTER TABLE intake.psaps ADD COLUMN supervisor_url text;

CREATE TABLE intake.supervisor_alerts (
    id              bigserial   PRIMARY KEY,
    callback_id     bigint      NOT NULL UNIQUE REFERENCES intake.callbacks (id),
    call_id         uuid        NOT NULL REFERENCES intake.calls (id),
    psap_id         text        NOT NULL,
    payload         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX supervisor_alerts_pending ON intake.supervisor_alerts (next_attempt_at) WHERE state = 'pending';
