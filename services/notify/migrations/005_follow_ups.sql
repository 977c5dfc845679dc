-- The 988 center's agency owes a follow-up call within this many hours of accepting a call
-- (NULL: an ordinary agency, which owes none).
ALTER TABLE notify.agencies ADD COLUMN follow_up_within_h double precision;

-- Each follow-up a 988 center owes: due at accept + follow_up_within, closed by the center,
-- reported overdue once when still open at its due time.
CREATE TABLE notify.follow_ups (
    id            uuid PRIMARY KEY,
    assignment_id uuid NOT NULL UNIQUE REFERENCES notify.assignments (id),
    call_id       uuid NOT NULL,
    agency_id     text NOT NULL,
    correlation   text NOT NULL,
    due_at        timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    overdue_at    timestamptz,
    closed_at     timestamptz,
    outcome       text,
    note          text
);
CREATE INDEX follow_ups_agency ON notify.follow_ups (agency_id, created_at DESC);
CREATE INDEX follow_ups_due ON notify.follow_ups (due_at) WHERE closed_at IS NULL AND overdue_at IS NULL;
