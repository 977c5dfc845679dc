-- Matching keeps the whole roster in memory and tests coverage boxes there (services/matching/
-- domain.py): the stored box, its GiST index and the polygon bounds it was made of have no reader.
ALTER TABLE matching.teams DROP COLUMN IF EXISTS coverage;
ALTER TABLE matching.teams DROP COLUMN IF EXISTS area_box;
