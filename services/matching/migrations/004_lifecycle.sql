-- Every step the state machines (services/matching/lifecycle.py) refuse is kept here:
-- which event, about which call and assignment, from which state, what it tried and why not.
CREATE TABLE matching.refusals (
    id            bigserial   PRIMARY KEY,
    call_id       uuid        NOT NULL,
    assignment_id uuid,
    event_id      text        NOT NULL,
    event_type    text        NOT NULL,
    from_state    text        NOT NULL,
    step          text        NOT NULL,
    code          text        NOT NULL,
    detail        text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_call ON matching.refusals (call_id, id);
CREATE INDEX refusals_assignment ON matching.refusals (assignment_id) WHERE assignment_id IS NOT NULL;
-- Notify decides deadlines now: matching keeps each offer's deadline but no longer looks for due ones.
DROP INDEX IF EXISTS matching.assignments_due;
