-- Notify's store: agencies' channels and the assignments they are answering.
CREATE TABLE notify.agencies (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    channels   text[] NOT NULL,
    partitions integer NOT NULL DEFAULT 1
);

CREATE TABLE notify.assignments (
    id           uuid PRIMARY KEY,
    call_id      uuid NOT NULL,
    agency_id    text NOT NULL,
    team_id      text NOT NULL,
    status       text NOT NULL,
    deadline     timestamptz NOT NULL,
    details      jsonb NOT NULL,
    correlation  text NOT NULL,
    answer       jsonb,
    offered_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_agency ON notify.assignments (agency_id, status, offered_at DESC);
