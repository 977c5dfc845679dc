-- Delivery: each agency's webhook and SSE feed, re-paging, and every attempt to reach an agency.
ALTER TABLE notify.agencies
    ADD COLUMN webhook_url           text,
    ADD COLUMN webhook_secret        text,
    ADD COLUMN webhook_allow_private boolean NOT NULL DEFAULT false,
    ADD COLUMN webhook_disabled_at   timestamptz,
    -- The last sequence number of the agency's feed; the row lock taken to bump it makes
    -- feed rows commit in sequence order, so a reader resuming after N never misses one.
    ADD COLUMN feed_seq              bigint NOT NULL DEFAULT 0;

ALTER TABLE notify.assignments
    ADD COLUMN pages         integer     NOT NULL DEFAULT 1,
    ADD COLUMN last_paged_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX assignments_unanswered ON notify.assignments (last_paged_at) WHERE status = 'offered';

-- What the SSE stream serves: an agency's own offers and updates, resumable by sequence.
CREATE TABLE notify.feed (
    agency_id     text        NOT NULL,
    seq           bigint      NOT NULL,
    kind          text        NOT NULL,
    assignment_id uuid        NOT NULL,
    call_id       uuid        NOT NULL,
    page          integer,
    data          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agency_id, seq)
);

-- Webhook messages waiting to be sent, in order per call.
CREATE TABLE notify.webhook_queue (
    id              bigserial   PRIMARY KEY,
    notification_id uuid        NOT NULL UNIQUE,
    agency_id       text        NOT NULL,
    call_id         uuid        NOT NULL,
    assignment_id   uuid        NOT NULL,
    kind            text        NOT NULL,
    page            integer,
    body            bytea       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX webhook_queue_pending ON notify.webhook_queue (agency_id, call_id, id) WHERE state = 'pending';

-- Every attempt to reach an agency on any channel, and how it went (also published).
CREATE TABLE notify.deliveries (
    id              bigserial   PRIMARY KEY,
    notification_id uuid        NOT NULL,
    assignment_id   uuid        NOT NULL,
    call_id         uuid        NOT NULL,
    agency_id       text        NOT NULL,
    channel         text        NOT NULL,
    kind            text        NOT NULL,
    page            integer,
    attempt         integer     NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('delivered', 'failed', 'retrying')),
    error           text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_assignment ON notify.deliveries (assignment_id, at);

-- Withdrawals and expiries that arrived before their offer (the topics are consumed independently):
-- the late offer is then stored as taken back and never sent.
CREATE TABLE notify.taken_back (
    assignment_id uuid        PRIMARY KEY,
    kind          text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
