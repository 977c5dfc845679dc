-- A PSAP update's newer details for an offer notify has not read yet (the offer's topic is read
-- apart from the update's): the offer, when it comes, goes out with them.
CREATE TABLE notify.early_updates (
    assignment_id uuid        PRIMARY KEY,
    details       jsonb       NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
