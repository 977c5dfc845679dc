"""Who may answer an offer, when, and which status may follow which."""

import pytest

from services.notify.domain import (
    INPUTS,
    REPEATS,
    TRANSITIONS,
    Refusal,
    Step,
    address_allowed,
    backoff_s,
    minimum,
    refused,
    step,
    webhook_verdict,
)
from shared.errors import status_of
from shared.events import OfferDetails

# Every allowed step of an assignment in notify: (state, input) -> next state. Written out in full
# so a change to the table is a change to this test.
ALLOWED = {
    ("offered", "accepted"): "accepted",
    ("offered", "declined"): "declined",
    ("offered", "withdraw"): "withdrawn",
    ("offered", "expire"): "expired",
    ("accepted", "en_route"): "en_route",
    ("accepted", "on_scene"): "on_scene",
    ("accepted", "cleared"): "cleared",
    ("accepted", "backup_requested"): "accepted",
    ("accepted", "withdraw"): "withdrawn",
    ("en_route", "on_scene"): "on_scene",
    ("en_route", "cleared"): "cleared",
    ("en_route", "backup_requested"): "en_route",
    ("en_route", "withdraw"): "withdrawn",
    ("on_scene", "cleared"): "cleared",
    ("on_scene", "backup_requested"): "on_scene",
    ("on_scene", "check_in"): "on_scene",
    ("on_scene", "withdraw"): "withdrawn",
}
REPEATED = {
    ("accepted", "accepted"),
    ("en_route", "accepted"),
    ("en_route", "en_route"),
    ("on_scene", "accepted"),
    ("on_scene", "on_scene"),
    ("cleared", "accepted"),
    ("cleared", "cleared"),
    ("declined", "declined"),
    ("withdrawn", "withdraw"),
    ("expired", "expire"),
}


def code_of(state: str, event: str, **kw: bool) -> str:
    outcome = step(state, event, **kw)
    assert isinstance(outcome, Refusal), (state, event, outcome)
    return outcome.code


def test_every_allowed_step_and_every_repeat_is_in_the_table_and_nothing_else_is_allowed():
    for state in TRANSITIONS:
        for event in INPUTS:
            outcome = step(state, event)
            if (state, event) in ALLOWED:
                assert outcome == Step(ALLOWED[state, event], True), (state, event)
            elif (state, event) in REPEATED:
                assert outcome == Step(state, False), (state, event)
            else:
                assert isinstance(outcome, Refusal), (state, event, outcome)
    assert {(s, e) for s, es in REPEATS.items() for e in es} == REPEATED


def test_refusals_carry_a_code_the_agency_can_act_on():
    assert code_of("withdrawn", "accepted") == "offer_withdrawn"
    assert code_of("withdrawn", "en_route") == "offer_withdrawn"
    assert code_of("expired", "declined") == "offer_expired"
    assert code_of("expired", "on_scene") == "offer_expired"
    assert code_of("accepted", "declined") == "already_answered"
    assert code_of("declined", "accepted") == "already_answered"
    assert code_of("offered", "on_scene") == "invalid_transition"
    assert code_of("on_scene", "en_route") == "invalid_transition"
    assert code_of("cleared", "on_scene") == "invalid_transition"
    assert code_of("cleared", "withdraw") == "invalid_transition"
    assert code_of("declined", "expire") == "invalid_transition"
    error = refused(Refusal("offer_expired", "late"))
    assert (status_of(error), error.code, error.detail) == (409, "offer_expired", "late")


def test_an_answer_at_or_after_the_deadline_is_refused_as_expired_and_a_report_is_not_judged_by_it():
    assert code_of("offered", "accepted", past_deadline=True) == "offer_expired"
    assert code_of("offered", "declined", past_deadline=True) == "offer_expired"
    # Once accepted in time, the deadline no longer matters.
    assert step("accepted", "en_route", past_deadline=True) == Step("en_route", True)
    assert step("accepted", "accepted", past_deadline=True) == Step("accepted", False)
    # Notify's own expiry of an unanswered offer.
    assert step("offered", "expire", past_deadline=True) == Step("expired", True)


def test_an_unknown_input_is_a_bug_not_a_refusal():
    with pytest.raises(ValueError):
        step("offered", "teleported")


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
    assert set(kept) == {
        "location",
        "presenting_problem",
        "language",
        "safety",
        "callback_number",
        "cautions",
    }
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
