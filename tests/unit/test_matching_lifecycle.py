"""Matching's state machines: every allowed and every refused step of an assignment and of a call."""

from __future__ import annotations

import pytest

from services.matching.lifecycle import (
    ASSIGNMENT,
    ASSIGNMENT_INPUTS,
    CALL,
    CALL_INPUTS,
    LIVE,
    Refusal,
    assignment_step,
    call_step,
    tells_agency_gone,
)

ASSIGNMENT_ALLOWED = {
    ("offered", "accepted"): "accepted",
    ("offered", "declined"): "declined",
    ("offered", "expired"): "expired",
    # A status report read before the acceptance (two topics) implies it.
    ("offered", "en_route"): "en_route",
    ("offered", "on_scene"): "on_scene",
    ("offered", "cleared"): "cleared",
    ("offered", "withdraw"): "withdrawn",
    ("accepted", "en_route"): "en_route",
    ("accepted", "on_scene"): "on_scene",
    ("accepted", "cleared"): "cleared",
    ("accepted", "withdraw"): "withdrawn",
    ("en_route", "on_scene"): "on_scene",
    ("en_route", "cleared"): "cleared",
    ("en_route", "withdraw"): "withdrawn",
    ("on_scene", "cleared"): "cleared",
    ("on_scene", "withdraw"): "withdrawn",
}
# Steps that are behind the state (a repeat or an earlier step read late): nothing changes.
ASSIGNMENT_BEHIND = {
    ("accepted", "accepted"),
    ("en_route", "accepted"),
    ("en_route", "en_route"),
    ("on_scene", "accepted"),
    ("on_scene", "en_route"),
    ("on_scene", "on_scene"),
    ("cleared", "accepted"),
    ("cleared", "en_route"),
    ("cleared", "on_scene"),
    ("cleared", "cleared"),
    ("declined", "declined"),
    ("expired", "expired"),
    ("withdrawn", "withdraw"),
}
CALL_ALLOWED = {
    ("matching", "offer"): "offered",
    ("matching", "hand_back"): "unassigned",
    ("matching", "cancel"): "cancelled",
    ("offered", "offer"): "offered",
    ("offered", "accept"): "assigned",
    ("offered", "hand_back"): "unassigned",
    ("offered", "cancel"): "cancelled",
    ("offered", "close"): "closed",
    ("assigned", "hand_back"): "unassigned",
    ("assigned", "cancel"): "cancelled",
    ("assigned", "close"): "closed",
    ("routed_away", "hand_back"): "unassigned",
    ("routed_away", "cancel"): "cancelled",
    ("routed_away", "reroute"): "matching",
    ("unassigned", "cancel"): "cancelled",
}
CALL_BEHIND = {
    ("assigned", "accept"),
    ("unassigned", "hand_back"),
    ("cancelled", "cancel"),
    ("closed", "close"),
    ("closed", "accept"),
}


def test_every_assignment_step_is_allowed_behind_or_refused_exactly_as_written():
    for state in ASSIGNMENT:
        for step in ASSIGNMENT_INPUTS:
            outcome = assignment_step(state, step)
            if (state, step) in ASSIGNMENT_ALLOWED:
                assert outcome == ASSIGNMENT_ALLOWED[state, step], (state, step)
            elif (state, step) in ASSIGNMENT_BEHIND:
                assert outcome == state, (state, step)
            else:
                assert isinstance(outcome, Refusal), (state, step, outcome)


def test_a_withdrawn_assignment_never_comes_back_to_life():
    for step in ("accepted", "en_route", "on_scene", "cleared", "declined", "expired"):
        assert assignment_step("withdrawn", step) == Refusal(
            "assignment_withdrawn", f"cannot apply {step} to an assignment withdrawn"
        )
    assert isinstance(assignment_step("expired", "accepted"), Refusal)
    assert isinstance(assignment_step("declined", "en_route"), Refusal)
    # A live assignment's refusal names the step and the state.
    refused = assignment_step("accepted", "declined")
    assert isinstance(refused, Refusal) and refused.code == "declined_while_accepted"
    assert isinstance(assignment_step("en_route", "expired"), Refusal)


def test_only_the_agencys_claims_call_for_telling_it_the_assignment_is_gone():
    assert [s for s in ASSIGNMENT_INPUTS if tells_agency_gone(s)] == [
        "accepted",
        "en_route",
        "on_scene",
        "cleared",
    ]
    assert set(LIVE) == {"offered", "accepted", "en_route", "on_scene"}


def test_every_call_step_is_allowed_behind_or_refused_exactly_as_written():
    for state in CALL:
        for step in CALL_INPUTS:
            outcome = call_step(state, step)
            if (state, step) in CALL_ALLOWED:
                assert outcome == CALL_ALLOWED[state, step], (state, step)
            elif (state, step) in CALL_BEHIND:
                assert outcome == state, (state, step)
            else:
                assert isinstance(outcome, Refusal) and outcome.code == f"call_{state}", (state, step)


def test_a_cleared_or_cancelled_call_never_changes_back_and_a_pending_cancel_is_never_offered():
    for step in ("offer", "accept", "hand_back", "close", "reroute"):
        assert isinstance(call_step("cancelled", step), Refusal), step
    for step in ("offer", "hand_back", "cancel", "reroute"):
        assert isinstance(call_step("closed", step), Refusal), step
    # A call an update took away before it was read is never offered until rerouted.
    assert isinstance(call_step("routed_away", "offer"), Refusal)


def test_an_unknown_step_is_a_bug_not_a_refusal():
    with pytest.raises(ValueError):
        assignment_step("offered", "teleported")
    with pytest.raises(ValueError):
        call_step("offered", "teleported")
