-- The jurisdiction's address points, for geocoding civic addresses. A load writes a new set and
-- makes it the active one in one transaction, so a call is geocoded against one whole set.
CREATE TABLE intake.address_sets (
    id        bigserial PRIMARY KEY,
    source    text NOT NULL,
    format    text NOT NULL,
    sha256    text NOT NULL,
    points    integer NOT NULL,
    streets   integer NOT NULL,
    active    boolean NOT NULL DEFAULT false,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX address_sets_one_active ON intake.address_sets (active) WHERE active;

-- Names are stored normalised (USPS Publication 28 abbreviations, upper case): `street` is the
-- whole street as one key (`N MAIN ST`), what a call's street is compared with exactly.
CREATE TABLE intake.address_points (
    set_id        bigint NOT NULL REFERENCES intake.address_sets (id),
    street        text NOT NULL,
    number        integer NOT NULL,
    number_suffix text NOT NULL DEFAULT '',
    unit          text NOT NULL DEFAULT '',
    municipality  text NOT NULL DEFAULT '',
    community     text NOT NULL DEFAULT '',
    postcode      text NOT NULL DEFAULT '',
    state         text NOT NULL DEFAULT '',
    lat           double precision NOT NULL,
    lon           double precision NOT NULL
);
CREATE INDEX address_points_street_number ON intake.address_points (set_id, street, number);

-- Every street of a set once per place (municipality, postal community, postcode), in its parts:
-- what intake holds in memory to match a misspelt street without reading the points.
CREATE TABLE intake.address_streets (
    set_id       bigint NOT NULL REFERENCES intake.address_sets (id),
    municipality text NOT NULL,
    community    text NOT NULL,
    postcode     text NOT NULL,
    predir       text NOT NULL,
    pretype      text NOT NULL,
    name         text NOT NULL,
    type         text NOT NULL,
    posdir       text NOT NULL
);
CREATE INDEX address_streets_set ON intake.address_streets (set_id);

-- The civic address a call was geocoded from, normalised, so triaging it again needs no re-parse.
ALTER TABLE intake.calls ADD COLUMN civic jsonb;
