-- A call's route: `community` (a team is chosen) or `988` (offered to the crisis line's agency).
ALTER TABLE matching.calls ADD COLUMN route text NOT NULL DEFAULT 'community'
    CHECK (route IN ('community', '988'));
-- A 988 offer names the center itself (team id `988`), which is no team of the roster.
ALTER TABLE matching.assignments DROP CONSTRAINT assignments_team_id_fkey;
