-- The EIDO agency identifiers a PSAP sends as besides its id, checked against each document's sender;
-- and the incident components of a call that disagree with the one that decides (kept, not used).
ALTER TABLE intake.psaps ADD COLUMN eido_agencies jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE intake.calls ADD COLUMN other_incidents jsonb NOT NULL DEFAULT '[]'::jsonb;
