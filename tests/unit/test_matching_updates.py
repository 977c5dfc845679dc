"""What a PSAP update changes in an offer, which changes its team hears, and what oversight sees."""

import pytest
from pydantic import ValidationError

from services.audit.domain import disclosed
from services.matching.updates import offer_changes, updated_offer
from shared import events

BEFORE = events.OfferDetails(
    location=events.Location(lat=44.05, lon=-123.09, address="100 W 10th Ave"),
    presenting_problem="MNTL",
    language="es",
    safety=events.SafetyScreen(),
    callback_number="+15415550123",
    cautions=["DOG ON PREMISES"],
)


def update(**changes: object) -> events.OfferDetails:
    """The offer as a PSAP update describes it: the same call unless `changes` say otherwise."""
    same = BEFORE.model_copy(update={"callback_number": None, "language": None, "cautions": []})
    return same.model_copy(update=changes)


def test_an_update_that_names_nothing_new_changes_nothing_the_team_hears():
    after = updated_offer(BEFORE, update())
    assert after == BEFORE
    assert offer_changes(BEFORE, after) == []


def test_a_new_place_number_language_and_caution_are_each_named_in_a_fixed_order():
    moved = events.Location(lat=44.06, lon=-123.08, address="200 Oak St")
    after = updated_offer(
        BEFORE,
        update(location=moved, callback_number="+15415550199", language="en", cautions=["GATE CODE 4471"]),
    )
    assert after.location == moved and after.callback_number == "+15415550199" and after.language == "en"
    assert after.cautions == ["DOG ON PREMISES", "GATE CODE 4471"]
    assert offer_changes(BEFORE, after) == ["location", "callback_number", "language", "cautions"]


def test_only_the_address_text_changing_is_a_new_place():
    after = updated_offer(BEFORE, update(location=BEFORE.location.model_copy(update={"address": "Apt 4"})))
    assert offer_changes(BEFORE, after) == ["location"]


def test_a_caution_sent_again_is_not_new():
    after = updated_offer(BEFORE, update(cautions=["DOG ON PREMISES"]))
    assert after.cautions == ["DOG ON PREMISES"]
    assert offer_changes(BEFORE, after) == []


def test_oversight_sees_what_changed_but_never_the_number_or_the_caution_words():
    told = events.AssignmentUpdated(
        assignment_id="a",
        call_id="c",
        agency_id="ag",
        team_id="t",
        attempt=1,
        offer=updated_offer(BEFORE, update(callback_number="+15415550199", cautions=["GATE CODE 4471"])),
        changed=["callback_number", "cautions"],
    )
    seen = disclosed(events.AssignmentUpdated, told.model_dump(mode="json"))
    assert seen["changed"] == ["callback_number", "cautions"]
    text = str(seen)
    assert "+1541555" not in text and "GATE CODE" not in text and "DOG" not in text
    assert "10th Ave" not in text  # the address is not on the allow-list either
    assert (seen["offer"]["location"]["lat"], seen["offer"]["location"]["lon"]) == (44.05, -123.09)


def test_an_update_event_names_at_least_one_change():
    with pytest.raises(ValidationError):
        events.AssignmentUpdated(
            assignment_id="a", call_id="c", agency_id="ag", team_id="t", offer=BEFORE, changed=[]
        )
