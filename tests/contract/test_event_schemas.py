"""Every payload's JSON schema stays as committed; a breaking change needs a new `.v2` topic.

Regenerate the snapshots deliberately with `CAREROUTE_UPDATE_SNAPSHOTS=1 make test`.
"""

import json
import os
from pathlib import Path

import pytest

from shared import topics

SNAPSHOTS = Path(__file__).parent / "schemas"
TYPES = [*topics.REGISTRY, topics.AGENCY_TYPE]


@pytest.mark.parametrize("type_", TYPES)
def test_payload_schema_matches_its_snapshot(type_):
    schema = topics.model_for(type_).model_json_schema()
    path = SNAPSHOTS / f"{type_}.json"
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("CAREROUTE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot for {type_}: run with CAREROUTE_UPDATE_SNAPSHOTS=1"
    assert json.loads(path.read_text()) == schema, f"{type_} changed: a breaking change needs a .v2 topic"


def test_every_snapshot_names_a_known_type():
    assert sorted(p.stem for p in SNAPSHOTS.glob("*.json")) == sorted(TYPES)
