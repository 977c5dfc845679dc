-- The last capacity snapshot (teams.capacity.v1) any matching replica published: replicas that
-- read the same roster publish it once, and a heartbeat only when the last one is getting old.
CREATE TABLE matching.capacity_published (
    id int PRIMARY KEY CHECK (id = 1),
    digest text NOT NULL,
    published_at timestamptz NOT NULL
);
