-- Issue 12: a call's status follows the causal order of its assignments (matching's attempt number,
-- then the step's place in its assignment's life), never the clocks of the services that sent them.
ALTER TABLE intake.calls
    -- The attempt and stage of the step that last moved the status (NULL and 0: none yet).
    ADD COLUMN status_attempt      integer,
    ADD COLUMN status_stage        integer NOT NULL DEFAULT 0,
    -- A hand-back covers every attempt up to this one: their late steps move nothing.
    ADD COLUMN handed_back_through integer,
    DROP COLUMN status_event_time;

-- Where each step sits in that order; the timeline reads in it (event_time stays, for display).
ALTER TABLE intake.call_timeline
    ADD COLUMN attempt integer,
    ADD COLUMN stage   integer NOT NULL DEFAULT 0;
