-- Events from several topics reach intake in no particular order: a status moves only for an event
-- newer than the one that set it. NULL (calls stored before this column) lets the next event apply.
ALTER TABLE intake.calls ADD COLUMN status_event_time timestamptz;

-- When each step happened at its producer, so the timeline reads in that order (NULL: not known).
ALTER TABLE intake.call_timeline ADD COLUMN event_time timestamptz;
