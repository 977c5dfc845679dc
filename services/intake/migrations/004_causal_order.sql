-- A call's status follows the causal order of its assignments (matching's attempt number,
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

-- Calls in flight keep their place: the stage of their status (domain.STAGE) and, as their attempt,
-- the number of assignments their timeline has seen (matching numbers a call's offers 1, 2, ...).
UPDATE intake.calls c SET
    status_stage = CASE
        WHEN status = 'offered' THEN 10
        WHEN status = 'assigned' THEN 20
        WHEN status = 'en_route' THEN 30
        WHEN status IN ('on_scene', 'backup_requested') THEN 40
        WHEN status IN ('cleared', 'offer_declined', 'offer_expired', 'withdrawn') THEN 50
        WHEN status = 'handed_back' THEN 60
        ELSE 0 END,
    status_attempt = seen.assignments,
    handed_back_through = CASE WHEN status = 'handed_back' THEN coalesce(seen.assignments, 0) END
FROM (
    SELECT call_id, nullif(count(DISTINCT detail->>'assignment_id'), 0)::integer AS assignments
    FROM intake.call_timeline GROUP BY call_id
) seen
WHERE seen.call_id = c.id;
