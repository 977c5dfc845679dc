-- Issue 4: coverage polygons, the matching rules, every decision with its explanation, and offer
-- deadlines the expiry loop can find quickly.
ALTER TABLE matching.teams ADD COLUMN area jsonb;

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
