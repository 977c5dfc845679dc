-- Since when an agency has shown no sign of life (notify's agencies.reachability.v1; NULL:
-- reachable), and the time of the newest such event applied, so one read late changes nothing.
ALTER TABLE matching.agencies
    ADD COLUMN unreachable_since timestamptz,
    ADD COLUMN reachability_at timestamptz;
