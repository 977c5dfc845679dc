-- What the oversight reports need of the jurisdiction file, stored by `careroute load`: its time
-- zone, each team's capacity and shifts (audit holds no roster of its own), and the named zones.
CREATE TABLE audit.config (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);
