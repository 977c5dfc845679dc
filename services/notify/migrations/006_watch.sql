-- The timers that watch an accepted assignment (services/notify/watch.py): the jurisdiction's
-- watch section, matching's travel estimate from the offer, and on each assignment the one timer
-- running (its name, when it runs out, how far its miss has gone, when the watch job acts next).
-- The deadlines live here, so a notify that was down fires on start what came due meanwhile.
CREATE TABLE notify.watch_config (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    rules    jsonb   NOT NULL
);

ALTER TABLE notify.assignments
    ADD COLUMN eta_min       double precision,
    ADD COLUMN watch_timer   text CHECK (watch_timer IN ('en_route', 'on_scene', 'check_in')),
    ADD COLUMN watch_due     timestamptz,
    ADD COLUMN watch_stage   text CHECK (watch_stage IN ('running', 'repaged', 'overdue')),
    ADD COLUMN watch_fire_at timestamptz;
CREATE INDEX assignments_watch_due ON notify.assignments (agency_id, watch_fire_at)
    WHERE watch_fire_at IS NOT NULL;
