-- Matching's store: the roster, the calls it is placing, and every offer it made.
CREATE TABLE matching.config (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

CREATE TABLE matching.agencies (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    contracted_share double precision NOT NULL DEFAULT 1.0
);

CREATE TABLE matching.teams (
    id           text PRIMARY KEY,
    agency_id    text NOT NULL REFERENCES matching.agencies (id),
    name         text NOT NULL,
    skills       text[] NOT NULL DEFAULT '{}',
    languages    text[] NOT NULL DEFAULT '{}',
    home_lat     double precision NOT NULL,
    home_lon     double precision NOT NULL,
    radius_km    double precision NOT NULL,
    capacity     integer NOT NULL DEFAULT 1,
    shifts       jsonb NOT NULL DEFAULT '[]'::jsonb,
    status       text NOT NULL DEFAULT 'available'
                 CHECK (status IN ('available', 'offered', 'assigned', 'en_route', 'on_scene',
                                   'off_shift', 'out_of_service')),
    current_call uuid,
    lat          double precision,
    lon          double precision,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- A team holds at most one call, and a call holds at most one team, enforced by the database.
CREATE UNIQUE INDEX teams_one_call ON matching.teams (current_call) WHERE current_call IS NOT NULL;

CREATE TABLE matching.calls (
    call_id     uuid PRIMARY KEY,
    psap_id     text NOT NULL,
    offer       jsonb NOT NULL,
    status      text NOT NULL,
    tried_teams text[] NOT NULL DEFAULT '{}',
    correlation text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE matching.assignments (
    id          uuid PRIMARY KEY,
    call_id     uuid NOT NULL REFERENCES matching.calls (call_id),
    team_id     text NOT NULL REFERENCES matching.teams (id),
    agency_id   text NOT NULL,
    attempt     integer NOT NULL,
    status      text NOT NULL,
    deadline    timestamptz NOT NULL,
    explanation jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    decided_at  timestamptz
);
CREATE INDEX assignments_call ON matching.assignments (call_id, attempt);
