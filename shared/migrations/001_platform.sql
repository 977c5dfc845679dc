-- Tables every service schema has: the outbox, the inbox and the credentials it accepts.
CREATE TABLE {schema}.outbox (
    id          bigserial PRIMARY KEY,
    topic       text        NOT NULL,
    key         text        NOT NULL,
    value       bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
-- The relay looks only at unsent rows, so a row that commits late is still found.
CREATE INDEX outbox_unsent ON {schema}.outbox (id) WHERE sent_at IS NULL;

CREATE TABLE {schema}.processed_events (
    event_id     uuid        PRIMARY KEY,
    event_type   text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE {schema}.credentials (
    token_sha256 bytea PRIMARY KEY,
    tenant_id    text  NOT NULL,
    role         text  NOT NULL CHECK (role IN ('psap', 'agency', 'oversight', 'admin'))
);
