-- Matching's newest capacity snapshot (teams.capacity.v1): which teams could take a call, read
-- by triage so a 202 says community only when a team covering the call can take it.
CREATE TABLE intake.capacity (
    id int PRIMARY KEY CHECK (id = 1),
    as_of timestamptz NOT NULL,
    snapshot jsonb NOT NULL
);
