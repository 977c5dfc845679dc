-- A row audit could not encode canonically is kept flagged, with the bytes it received: its seal
-- is SHA-256(nonce || those bytes), and its public view is the envelope's header alone.
ALTER TABLE audit.events
    ADD COLUMN flag text,
    ADD COLUMN raw bytea;
CREATE INDEX events_flagged ON audit.events (seq) WHERE flag IS NOT NULL;
