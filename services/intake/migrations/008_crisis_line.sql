-- The 988 crisis line the rules in force may transfer calls to (the jurisdiction's `crisis_line`
-- section), kept with the rules so one read gives triage both.
ALTER TABLE intake.triage_rules ADD COLUMN crisis_line jsonb;
