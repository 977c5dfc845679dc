-- Every dead letter of the schema's consumer group, kept durably: the alarm's record, what
-- parks a subject (its later events follow it so they never overtake it), and what replay reads.
CREATE TABLE {schema}.dead_letters (
    id               bigserial   PRIMARY KEY,
    consumer_group   text        NOT NULL,
    origin_topic     text        NOT NULL,
    origin_partition integer     NOT NULL,
    origin_offset    bigint      NOT NULL,
    key              text,
    subject          text,
    event_id         uuid,
    event_type       text,
    reason           text        NOT NULL,
    error            text        NOT NULL,
    value            bytea,
    header_keys      text[]      NOT NULL DEFAULT '{}',
    header_values    bytea[]     NOT NULL DEFAULT '{}',
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    -- The original record published again to its origin topic.
    replayed_at      timestamptz,
    -- That copy came back through the consumer (applied, or dead-lettered anew): the park it held ends.
    resumed_at       timestamptz,
    -- A record redelivered after a crash is recorded once.
    UNIQUE (consumer_group, origin_topic, origin_partition, origin_offset)
);
CREATE INDEX dead_letters_parking ON {schema}.dead_letters (consumer_group, subject) WHERE resumed_at IS NULL;
