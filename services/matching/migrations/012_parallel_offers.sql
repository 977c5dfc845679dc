-- Parallel offers: one attempt may offer a call to several teams at once, so a call may be held by
-- several teams (a hold per call and team) and be the most recent call of several; the call keeps
-- its attempt count (no longer the number of teams tried) and each offer how many shared it.
ALTER TABLE matching.holds DROP CONSTRAINT holds_pkey;
ALTER TABLE matching.holds ADD PRIMARY KEY (call_id, team_id);
DROP INDEX matching.teams_one_call;
ALTER TABLE matching.calls ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);
UPDATE matching.calls SET attempts = cardinality(tried_teams);
ALTER TABLE matching.assignments ADD COLUMN offered_with integer NOT NULL DEFAULT 1 CHECK (offered_with >= 1);
