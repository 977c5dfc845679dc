"""Who may answer an offer, when, and which status may follow which."""

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.domain import check_answer, check_status
from shared.errors import ApiError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=2)


def code(fn, *args) -> str:
    with pytest.raises(ApiError) as err:
        fn(*args)
    return err.value.code


def test_an_open_offer_can_be_accepted_or_declined():
    assert check_answer("offered", LATER, NOW, "accepted") is True
    assert check_answer("offered", LATER, NOW, "declined") is True


def test_an_answer_after_the_deadline_is_refused():
    assert code(check_answer, "offered", NOW, NOW, "accepted") == "offer_expired"


def test_withdrawn_and_expired_offers_are_refused_with_their_own_code():
    assert code(check_answer, "withdrawn", LATER, NOW, "accepted") == "offer_withdrawn"
    assert code(check_answer, "expired", LATER, NOW, "declined") == "offer_expired"


def test_answering_the_same_way_twice_is_a_no_op_and_changing_the_answer_is_refused():
    assert check_answer("accepted", LATER, NOW, "accepted") is False
    assert check_answer("on_scene", LATER, NOW, "accepted") is False
    assert check_answer("declined", LATER, NOW, "declined") is False
    assert code(check_answer, "accepted", LATER, NOW, "declined") == "already_answered"


def test_status_follows_the_lifecycle():
    assert check_status("accepted", "en_route") == "en_route"
    assert check_status("en_route", "on_scene") == "on_scene"
    assert check_status("on_scene", "backup_requested") == "on_scene"
    assert code(check_status, "offered", "on_scene") == "invalid_transition"
    assert code(check_status, "on_scene", "en_route") == "invalid_transition"
    assert code(check_status, "cleared", "on_scene") == "invalid_transition"
