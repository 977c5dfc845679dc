"""Which of a call's assignment steps may still move its status: causal order, never clocks.

The rule before this one (`why_late`) compared the producers' event times first, so each case
below that names a clock failed there: a step's fate depended on whose clock was ahead.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain import (
    STAGE,
    Order,
    TimestampInFuture,
    attempt_of,
    covered_by,
    place,
    ratchet,
    refuse_future,
)
from shared.events import Answer, SafetyScreen

Step = tuple[str, str, int | None]  # (assignment id or "" for the call, status, attempt)


def test_a_late_decline_leaves_a_handed_back_call_handed_back():
    """Item 5: the old rule ranked offer_declined and handed_back equal, so a decline consumed after
    the hand-back applied and the PSAP saw "offer declined"."""
    handed_back = place(Order("offer_declined", 1, STAGE["offer_declined"]), "handed_back", 1).order
    assert handed_back == Order("handed_back", 1, STAGE["handed_back"], handed_back_through=1)
    late = place(handed_back, "offer_declined", 1)
    assert late.late_because == "call_handed_back" and late.order == handed_back
    # Even a decline stamped a minute after the hand-back (notify's clock ahead): no clock is read.
    assert late.key < place(Order("offered", 1, 10), "handed_back", 1).key  # shown before it


def test_an_expiry_of_attempt_1_after_the_offer_of_attempt_2_is_late():
    """The old rule let the expiry apply whenever its producer's clock stamped it after the offer."""
    offered_2 = Order("offered", 2, STAGE["offered"])
    late = place(offered_2, "offer_expired", 1)
    assert late.late_because == "earlier_attempt" and late.order == offered_2
    assert late.key < (2, STAGE["offered"])  # the timeline shows it before the second offer


def test_the_next_attempt_supersedes_an_ended_one():
    """Before: the next offer, stamped by matching behind notify, was older than the expiry."""
    after = place(Order("offer_expired", 1, STAGE["offer_expired"]), "offered", 2)
    assert after.late_because is None and after.order == Order("offered", 2, STAGE["offered"])


@pytest.mark.parametrize(
    ("current", "status"),
    [
        ("assigned", "offered"),  # the accept was consumed before its offer
        ("withdrawn", "assigned"),  # an agency's accept published after the withdrawal
        ("offer_expired", "assigned"),
        ("on_scene", "en_route"),
        ("cleared", "on_scene"),
        ("offer_expired", "offer_declined"),  # one assignment ends once: the first end stands
        ("assigned", "assigned"),
    ],
)
def test_a_step_its_assignment_is_already_past_moves_nothing(current: str, status: str):
    """With notify's clock 60 s behind, the old rule kept every later step of the team "older" than
    matching's offer; here only the place in the assignment's life decides."""
    order = Order(current, 1, STAGE[current])
    placed = place(order, status, 1)
    assert placed.late_because == "assignment_further_along" and placed.order == order


@pytest.mark.parametrize(
    ("current", "status"),
    [
        ("offered", "assigned"),
        ("assigned", "en_route"),
        ("assigned", "on_scene"),  # an on scene that overtook its en route
        ("assigned", "withdrawn"),  # a cancel or a raised flag takes an assigned team back
        ("on_scene", "cleared"),
        ("offered", "offer_declined"),
        ("offered", "offer_expired"),
    ],
)
def test_a_step_that_follows_its_assignment_s_progress_moves_the_status(current: str, status: str):
    """The old rule refused each of these whenever the step's producer stamped it earlier."""
    placed = place(Order(current, 1, STAGE[current]), status, 1)
    assert placed.late_because is None and placed.order == Order(status, 1, STAGE[status])


def test_the_first_step_of_a_call_moves_it_whatever_it_is():
    """Before: a first step stamped by a clock behind intake's was older than the call's receipt."""
    for status in ("offered", "assigned", "en_route", "offer_declined"):
        assert place(Order("received"), status, 1).order.status == status
    assert place(Order("received"), "handed_back", 0).order.status == "handed_back"


def test_backup_is_a_step_of_a_live_assignment_that_moves_no_status():
    """Before: backup_requested ranked equal to on_scene and took the status, so an on scene
    consumed after it moved the status "back"; and an early backup was dropped by its time."""
    on_scene = Order("on_scene", 1, STAGE["on_scene"])
    backup = place(on_scene, "backup_requested", 1)
    assert backup.late_because is None and backup.order == on_scene  # told, status unchanged
    assert (1, STAGE["on_scene"]) < backup.key < (1, STAGE["cleared"])
    cleared = Order("cleared", 1, STAGE["cleared"])
    assert place(cleared, "backup_requested", 1).late_because == "assignment_further_along"
    assert place(Order("offered", 2, 10), "backup_requested", 1).late_because == "earlier_attempt"
    # A backup consumed before its accept still reaches the PSAP, and the accept still applies after.
    early = place(Order("offered", 1, 10), "backup_requested", 1)
    assert early.late_because is None
    assert place(early.order, "assigned", 1).order.status == "assigned"


def test_a_cancelled_call_takes_only_the_withdrawal_of_its_team():
    """The old rule read the cancel's time against the withdrawal's: a withdrawal stamped by a
    matching clock behind intake's was dropped, and the PSAP never heard the team was stood down."""
    cancelled = Order("cancelled", 1, STAGE["offered"])
    withdrawn = place(cancelled, "withdrawn", 1)
    assert withdrawn.late_because is None and withdrawn.order.status == "cancelled"
    for status in ("offer_expired", "offered", "assigned", "en_route", "cleared"):
        assert place(cancelled, status, 1).late_because == "call_cancelled", status
    assert place(cancelled, "handed_back", 1).late_because == "call_cancelled"
    # Once stood down, nothing of that assignment moves it again, not even a second withdrawal.
    assert place(withdrawn.order, "withdrawn", 1).late_because == "call_cancelled"
    assert place(withdrawn.order, "en_route", 1).late_because == "call_cancelled"
    # The withdrawal of an attempt whose offer intake has not seen yet is the team stood down too.
    assert place(cancelled, "withdrawn", 2).late_because is None


def test_a_hand_back_covers_the_attempts_it_counts_and_no_later_one():
    """Before: a hand-back applied whenever its time was later, whatever attempt was live."""
    assigned_2 = Order("withdrawn", 2, STAGE["withdrawn"])
    assert place(assigned_2, "handed_back", 2).order.status == "handed_back"
    # A hand-back of attempt 1 consumed after attempt 2 was offered (after a PSAP update re-placed
    # the call) is history.
    assert place(Order("offered", 2, 10), "handed_back", 1).late_because == "earlier_attempt"
    assert place(Order("handed_back", 1, 60, 1), "handed_back", 1).late_because == "call_handed_back"


def test_after_a_hand_back_no_assignment_step_moves_the_call_and_a_reopened_call_takes_only_new_ones():
    """Before: any step stamped after the hand-back applied over it."""
    handed_back = Order("handed_back", 2, STAGE["handed_back"], handed_back_through=2)
    for status, attempt in [("assigned", 2), ("cleared", 2), ("offered", 3), ("withdrawn", 1)]:
        assert place(handed_back, status, attempt).late_because == "call_handed_back"
    # A call-taker routes it to community again: intake's own step keeps the order's attempts.
    reopened = Order("received", 2, STAGE["handed_back"], handed_back_through=2)
    assert place(reopened, "offer_declined", 2).late_because == "superseded_by_hand_back"
    assert place(reopened, "offered", 3).order == Order("offered", 3, STAGE["offered"], 2)
    assert reopened.own_step() > (2, STAGE["handed_back"])


def test_an_event_without_attempt_takes_its_assignment_s_then_the_current_one():
    """New: the old rule had no attempt to resolve (it ordered by time)."""
    order = Order("offered", 2, STAGE["offered"])
    assert attempt_of(3, 1, order) == 3  # its own wins
    assert attempt_of(None, 1, order) == 1  # recorded with its offer: a late expiry of attempt 1
    assert attempt_of(None, None, order) == 2  # an accept that overtook nothing: the current offer
    assert attempt_of(None, None, Order("offer_expired", 2, STAGE["offer_expired"])) == 3
    assert attempt_of(None, None, Order("received")) == 1
    assert covered_by(None, Order("offer_expired", 2, 50)) == 2 and covered_by(3, order) == 3
    assert covered_by(None, Order("received")) == 0


def _replay(
    steps: list[Step], parallel: frozenset[str] = frozenset()
) -> tuple[str, list[tuple[int, int]], list[tuple[tuple[int, int], str]]]:
    """Apply steps in the given order as intake does: the final status, every step's timeline key
    in timeline order, and the steps told to the PSAP in order (`parallel`: the assignments offered
    at once with others, whose events carry `offered_with`)."""
    order, recorded = Order("received"), dict[str, int]()
    keys: list[tuple[int, int]] = []
    told: list[tuple[tuple[int, int], str]] = []
    for assignment, status, given in steps:
        if status == "handed_back":
            attempt = covered_by(given, order)
        else:
            attempt = attempt_of(given, recorded.get(assignment), order)
            recorded.setdefault(assignment, attempt)
        placed = place(order, status, attempt, assignment in parallel)
        keys.append(placed.key)
        if placed.late_because is None:
            told.append((placed.key, status))
        order = placed.order
    return order.status, sorted(keys), told


LIVES: dict[str, tuple[list[Step], str]] = {
    "declined, then the next team does the job": (
        [
            ("a1", "offered", 1),
            ("a1", "offer_declined", 1),
            ("a2", "offered", 2),
            ("a2", "assigned", 2),
            ("a2", "en_route", 2),
            ("a2", "on_scene", 2),
            ("a2", "cleared", 2),
        ],
        "cleared",
    ),
    "expired, declined, handed back": (
        [
            ("a1", "offered", 1),
            ("a1", "offer_expired", 1),
            ("a2", "offered", 2),
            ("a2", "offer_declined", 2),
            ("", "handed_back", 2),
        ],
        "handed_back",
    ),
    "a flag raised while on the way": (
        [
            ("a1", "offered", 1),
            ("a1", "assigned", 1),
            ("a1", "en_route", 1),
            ("a1", "withdrawn", 1),
            ("", "handed_back", 1),
        ],
        "handed_back",
    ),
    "an older producer: only the offer carries the attempt": (
        [
            ("a1", "offered", 1),
            ("a1", "assigned", None),
            ("a1", "en_route", None),
            ("a1", "on_scene", None),
            ("a1", "cleared", None),
        ],
        "cleared",
    ),
}


@pytest.mark.parametrize("life", list(LIVES))
def test_every_arrival_order_of_a_call_s_steps_ends_in_the_same_status_and_timeline(life: str):
    """The old rule decided by event times, so the same steps stamped by clocks a minute apart
    ended differently depending on which topic intake read first."""
    steps, final = LIVES[life]
    in_order = _replay(steps)
    assert in_order[0] == final
    for arrival in itertools.permutations(steps):
        status, keys, told = _replay(list(arrival))
        assert (status, keys) == (final, in_order[1]), arrival
        # What the PSAP is told never goes backwards: each told step is causally after the last.
        assert told[-1][1] == final and [k for k, _ in told] == sorted({k for k, _ in told}), arrival


# Three teams offered the call at once (attempt 1): each life in every arrival order.
PARALLEL = frozenset({"a1", "a2", "a3"})
PARALLEL_LIVES: dict[str, tuple[list[Step], str, list[str]]] = {
    "one declines, one accepts and does the job, the third is withdrawn": (
        [
            ("a1", "offered", 1),
            ("a2", "offered", 1),
            ("a3", "offered", 1),
            ("a2", "offer_declined", 1),
            ("a1", "assigned", 1),
            ("a3", "withdrawn", 1),
            ("a1", "cleared", 1),
        ],
        "cleared",
        ["offered", "assigned", "cleared"],
    ),
    "all three decline, the next attempt's team accepts": (
        [
            ("a1", "offered", 1),
            ("a2", "offered", 1),
            ("a3", "offered", 1),
            ("a1", "offer_declined", 1),
            ("a2", "offer_expired", 1),
            ("a3", "offer_declined", 1),
            ("a4", "offered", 2),
            ("a4", "assigned", 2),
        ],
        "assigned",
        ["offered", "offered", "assigned"],
    ),
    "none answers, handed back": (
        [
            ("a1", "offered", 1),
            ("a2", "offered", 1),
            ("a3", "offered", 1),
            ("a1", "offer_expired", 1),
            ("a2", "offer_expired", 1),
            ("a3", "offer_expired", 1),
            ("", "handed_back", 1),
        ],
        "handed_back",
        ["offered", "handed_back"],
    ),
}


@pytest.mark.parametrize("life", list(PARALLEL_LIVES))
def test_the_end_of_one_of_several_offers_made_at_once_never_moves_the_status(life: str):
    """A decline, expiry or withdrawal of one team offered the call with others moves nothing, in any
    arrival order: without it, a decline read after the winner's accept would have told the PSAP
    "offer declined" with a team on its way, and hidden the accept read after it."""
    steps, final, told_in_order = PARALLEL_LIVES[life]
    in_order = _replay(steps, PARALLEL)
    assert in_order[0] == final and [status for _, status in in_order[2]] == told_in_order
    for arrival in itertools.permutations(steps):
        status, keys, told = _replay(list(arrival), PARALLEL)
        assert (status, keys) == (final, in_order[1]), arrival
        assert told[-1][1] == final, arrival
        assert not {s for _, s in told} & {"offer_declined", "offer_expired", "withdrawn"}, arrival


def test_the_psap_is_told_only_steps_that_move_the_status_in_causal_order():
    """Before: the stale decline, stamped a minute late by notify, moved the status after the
    second offer and was told in its place."""
    steps = LIVES["declined, then the next team does the job"][0]
    # Notify's answers overtake matching's next offer, and a stale decline comes last.
    arrival = [steps[0], steps[2], steps[3], steps[4], steps[1], steps[5], steps[6]]
    told = [status for _, status in _replay(arrival)[2]]
    assert told == ["offered", "offered", "assigned", "en_route", "on_scene", "cleared"]


NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def test_a_timestamp_beyond_the_tolerance_ahead_is_refused_naming_the_field_and_our_clock():
    """Item 7: before, no timestamp was checked against intake's clock."""
    refuse_future([("lastUpdateTimeStamp", NOW + timedelta(seconds=300))], NOW, 300)
    refuse_future([("lastUpdateTimeStamp", NOW - timedelta(days=400))], NOW, 300)  # old is fine
    with pytest.raises(TimestampInFuture) as refused:
        refuse_future(
            [
                ("lastUpdateTimeStamp", NOW),
                ("cautionComponent[0].lastUpdateTimeStamp", NOW + timedelta(hours=1)),
            ],
            NOW,
            300,
        )
    assert refused.value.code == "timestamp_in_future"
    assert "cautionComponent[0].lastUpdateTimeStamp" in str(refused.value)
    assert NOW.isoformat() in str(refused.value) and "300 s" in str(refused.value)


def test_flags_only_ratchet_up():
    """Item 7: before, an older version's answers were dropped whole."""
    before = SafetyScreen(weapon=Answer.no, violence=Answer.yes, medical=Answer.unknown)
    sent = SafetyScreen(weapon=Answer.yes, violence=Answer.no, medical=Answer.no)
    after = ratchet(before, sent)
    assert (after.weapon, after.violence, after.medical) == (Answer.yes, Answer.yes, Answer.unknown)
