-- Intake's store: PSAPs, triage rules, calls (with what never leaves intake) and their timelines.
CREATE TABLE intake.psaps (
    id             text PRIMARY KEY,
    name           text NOT NULL,
    callback_url   text,
    signing_secret text,
    local_codes    jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE intake.triage_rules (
    version   text PRIMARY KEY,
    rules     jsonb NOT NULL,
    active    boolean NOT NULL DEFAULT false,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX triage_rules_one_active ON intake.triage_rules (active) WHERE active;

CREATE TABLE intake.calls (
    id              uuid PRIMARY KEY,
    psap_id         text NOT NULL REFERENCES intake.psaps (id),
    external_id     text NOT NULL,
    incident_type   text NOT NULL,
    origin          text NOT NULL,
    location        jsonb NOT NULL,
    language        text,
    safety          jsonb NOT NULL,
    callback_number text,
    caller_name     text,
    narrative       text,
    consent_non_police boolean,
    decision        jsonb NOT NULL,
    status          text NOT NULL,
    assignment      jsonb,
    received_at     timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (psap_id, external_id)
);

CREATE TABLE intake.call_timeline (
    id       bigserial PRIMARY KEY,
    call_id  uuid NOT NULL REFERENCES intake.calls (id),
    at       timestamptz NOT NULL DEFAULT now(),
    status   text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX call_timeline_call ON intake.call_timeline (call_id, id);
