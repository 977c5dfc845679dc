-- A team holds as many calls as its capacity: each call it holds is a row here (a call holds at
-- most one team), and `held` on the team counts them, so a reservation is one conditional UPDATE
-- (`held < capacity`) that concurrent reservations of the same team wait on and then re-check.
-- `current_call` and `status` stay the team's most recent call and that call's step.
CREATE TABLE matching.holds (
    call_id uuid        PRIMARY KEY,
    team_id text        NOT NULL REFERENCES matching.teams (id),
    status  text        NOT NULL CHECK (status IN ('offered', 'assigned', 'en_route', 'on_scene')),
    held_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX holds_team ON matching.holds (team_id, held_at);

ALTER TABLE matching.teams ADD COLUMN held integer NOT NULL DEFAULT 0 CHECK (held >= 0);

INSERT INTO matching.holds (call_id, team_id, status)
SELECT current_call, id, status FROM matching.teams
WHERE current_call IS NOT NULL AND status IN ('offered', 'assigned', 'en_route', 'on_scene');
UPDATE matching.teams t SET held = (SELECT count(*) FROM matching.holds h WHERE h.team_id = t.id);
