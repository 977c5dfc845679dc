"""A native call's location: a position, or an address alone that intake geocodes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.schemas import NativeCall


def _call(location: dict[str, object]) -> NativeCall:
    return NativeCall.model_validate({"external_id": "CAD-1", "incident_type": "MNTL", "location": location})


def test_a_position_is_taken_as_it_is_and_not_geocoded():
    call = _call({"lat": 44.05, "lon": -123.09, "address": "100 W 10th Ave"}).to_call()
    assert (call.location.lat, call.location.coordinates_known, call.civic) == (44.05, None, None)


def test_an_address_alone_is_a_location_without_coordinates_to_geocode():
    call = _call({"address": "100 W 10th Ave, Eugene, OR 97401"}).to_call()
    assert (call.location.lat, call.location.lon, call.location.coordinates_known) == (0, 0, False)
    assert call.civic is not None and (call.civic.number, call.civic.street.key) == (100, "W 10TH AVE")


def test_placeholder_coordinates_marked_unknown_are_geocoded_too():
    call = _call(
        {"lat": 0, "lon": 0, "coordinates_known": False, "address": "100 W 10th Ave, Eugene"}
    ).to_call()
    assert call.civic is not None and call.civic.municipality == "EUGENE"


@pytest.mark.parametrize(
    "location",
    [{}, {"lat": 44.05}, {"lon": -123.0, "address": "1 Main St"}, {"address": "  "}, {"lat": 91, "lon": 0}],
)
def test_a_location_needs_a_position_or_an_address(location: dict[str, object]):
    with pytest.raises(ValidationError):
        _call(location)
