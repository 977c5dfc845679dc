-- Notify holds each offer's deadline and decides it; every assignment event it publishes
-- carries matching's attempt number; every step the lifecycle (services/notify/domain.py) refuses
-- is kept: which event or request, from which state, what it tried and why not.
ALTER TABLE notify.assignments ADD COLUMN attempt integer;
CREATE INDEX assignments_due ON notify.assignments (agency_id, deadline) WHERE status = 'offered';

CREATE TABLE notify.refusals (
    id            bigserial   PRIMARY KEY,
    assignment_id uuid        NOT NULL,
    call_id       uuid,
    source        text        NOT NULL,
    from_state    text        NOT NULL,
    step          text        NOT NULL,
    code          text        NOT NULL,
    detail        text,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refusals_assignment ON notify.refusals (assignment_id, id);
