"""Who may answer an offer, when, and which status may follow which."""

from datetime import UTC, datetime, timedelta

import pytest

from services.notify.domain import (
    address_allowed,
    backoff_s,
    check_answer,
    check_status,
    is_repeat,
    minimum,
    webhook_verdict,
)
from shared.errors import ApiError
from shared.events import OfferDetails

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


def test_a_status_on_a_withdrawn_or_expired_assignment_is_refused_with_its_own_code():
    assert code(check_status, "withdrawn", "en_route") == "offer_withdrawn"
    assert code(check_status, "expired", "on_scene") == "offer_expired"


def test_reporting_the_same_status_twice_is_a_no_op_but_every_backup_request_counts():
    assert is_repeat("en_route", "en_route") and is_repeat("cleared", "cleared")
    assert check_status("cleared", "cleared") == "cleared"
    assert not is_repeat("on_scene", "backup_requested")
    assert not is_repeat("accepted", "en_route")


def test_an_offer_keeps_only_the_fields_a_team_needs():
    offer = OfferDetails.model_validate(
        {
            "location": {
                "lat": 44.0,
                "lon": -123.0,
                "address": "1 Main St",
                "uncertainty_m": 50.0,
                "reference_url": "https://lis.example/loc/1",
                "caller_home": "x",
            },
            "presenting_problem": "MNTL",
            "language": "es",
            "safety": {"weapon": "no", "ssn": "x"},
            "callback_number": "+15415550123",
            "caller_name": "Jane Roe",
            "narrative": "free text",
        }
    )
    kept = minimum(offer).model_dump(mode="json")
    assert set(kept) == {"location", "presenting_problem", "language", "safety", "callback_number"}
    location = {k: v for k, v in kept["location"].items() if v is not None}
    assert location == {"lat": 44.0, "lon": -123.0, "address": "1 Main St", "uncertainty_m": 50.0}
    assert "ssn" not in kept["safety"] and kept["safety"]["weapon"] == "no"
    assert "Jane Roe" not in str(kept)


def test_webhook_answers_are_taken_retried_or_mean_the_endpoint_is_gone():
    assert [webhook_verdict(s) for s in (200, 204, 410, 500, 429, 404, 301)] == [
        "delivered",
        "delivered",
        "gone",
        "retry",
        "retry",
        "retry",
        "retry",
    ]


def test_backoff_grows_exponentially_is_capped_and_jittered():
    assert [backoff_s(n, 0.5, 30, 0.999999) for n in (1, 2, 3)] == pytest.approx([0.5, 1.0, 2.0], rel=1e-3)
    assert backoff_s(20, 0.5, 30, 0.999999) == pytest.approx(30, rel=1e-3)
    assert backoff_s(3, 0.5, 30, 0.0) == 0
    assert backoff_s(3, 0.5, 30, 0.5) == pytest.approx(1.0)


def test_webhooks_go_to_public_addresses_only_unless_allowed():
    for private in (
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fc00::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
    ):
        assert not address_allowed(private, False), private
        assert address_allowed(private, True), private
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert address_allowed(public, False), public
