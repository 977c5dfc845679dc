-- EIDO versions, shadow decisions, overrides, signed-request replay memory, status callbacks.
ALTER TABLE intake.calls
    ADD COLUMN source_format        text  NOT NULL DEFAULT 'native',
    ADD COLUMN version_at           timestamptz,
    ADD COLUMN mpds_determinant     text,
    ADD COLUMN cautions             jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN warnings             jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN shadow_decision      jsonb,
    ADD COLUMN override             jsonb,
    -- Why an eligible call did not go to a community team (override reason or hand-back code).
    ADD COLUMN non_diversion_reason text;

ALTER TABLE intake.psaps
    ADD COLUMN previous_signing_secrets jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN rate_limit               text;
ALTER TABLE intake.triage_rules ADD COLUMN timezone text;

-- A signed request's webhook-id and the answer it got: a replay gets the same answer, nothing more.
CREATE TABLE intake.signed_requests (
    psap_id     text        NOT NULL,
    webhook_id  text        NOT NULL,
    status      integer     NOT NULL,
    body        bytea       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (psap_id, webhook_id)
);

-- Status changes waiting to reach the PSAP, written with the change; delivered in id order per call.
CREATE TABLE intake.callbacks (
    id              bigserial   PRIMARY KEY,
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
CREATE INDEX callbacks_pending ON intake.callbacks (call_id, id) WHERE state = 'pending';
