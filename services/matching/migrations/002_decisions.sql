-- Coverage polygons, the matching rules, every decision with its explanation, and offer
-- deadlines the expiry loop can find quickly.
ALTER TABLE matching.teams ADD COLUMN area jsonb;
-- The bounding box of a team's coverage (x = longitude, y = latitude): its polygon's bounds when
-- it has one, else a box around the circle of radius_km around its current position. The GiST
-- index answers "whose coverage may hold this call" without reading every team.
ALTER TABLE matching.teams ADD COLUMN area_box box;
ALTER TABLE matching.teams ADD COLUMN coverage box GENERATED ALWAYS AS (
    CASE WHEN area_box IS NOT NULL THEN area_box ELSE box(
        point(coalesce(lon, home_lon) - least(180, 1.01 * degrees(radius_km / 6371.0088)
                  / greatest(cos(radians(coalesce(lat, home_lat))), 1e-6)),
              coalesce(lat, home_lat) - 1.01 * degrees(radius_km / 6371.0088)),
        point(coalesce(lon, home_lon) + least(180, 1.01 * degrees(radius_km / 6371.0088)
                  / greatest(cos(radians(coalesce(lat, home_lat))), 1e-6)),
              coalesce(lat, home_lat) + 1.01 * degrees(radius_km / 6371.0088)))
    END
) STORED;
CREATE INDEX teams_coverage ON matching.teams USING gist (coverage);

ALTER TABLE matching.calls ADD COLUMN triage_version text;

ALTER TABLE matching.assignments ADD COLUMN reason text;
CREATE INDEX assignments_due ON matching.assignments (deadline) WHERE status = 'offered';
CREATE INDEX assignments_live ON matching.assignments (agency_id)
    WHERE status IN ('offered', 'accepted', 'en_route', 'on_scene');

-- One row per choice made for a call: an offer or a hand-back, with its inputs, every filter's
-- count, the score breakdown of the chosen team and the runners-up, and the rules version.
CREATE TABLE matching.decisions (
    id            bigserial PRIMARY KEY,
    call_id       uuid NOT NULL REFERENCES matching.calls (call_id),
    attempt       integer NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('offered', 'handed_back')),
    team_id       text,
    reason        text,
    rules_version text NOT NULL,
    explanation   jsonb NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_call ON matching.decisions (call_id, id);
