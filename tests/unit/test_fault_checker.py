"""The fault checker fails on a planted problem of each kind, and passes a clean snapshot."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.notify.delivery import delivered_id
from tools.faults.checker import KINDS, judge
from tools.faults.snapshot import (
    AgencyMessage,
    Assignment,
    DeadLetter,
    Delivery,
    Event,
    OutboxRow,
    Snapshot,
    Team,
)

CALL = "c1"
A1, A2 = "a1", "a2"
AGENCY_TOPIC = "agency.north.assignments.v1"
BEHAVIOURAL_FLAG = {"behavioural_health": True}
BEHAVIOURAL = {"route": "community", "codes": [], **BEHAVIOURAL_FLAG}


def ev(n: int, type_: str, **data: Any) -> Event:
    return Event(f"e{n}", type_, CALL, {"call_id": CALL, **data})


def lifecycle() -> list[tuple[str, Event]]:
    """A call offered to one team that declined, then to a second that did the whole job."""
    return [
        ("intake", ev(1, "calls.received.v1", decision=BEHAVIOURAL, received_at="2026-11-26T10:00:00Z")),
        ("matching", ev(2, "assignments.offered.v1", assignment_id=A1, attempt=1)),
        ("notify", ev(3, "assignments.responded.v1", assignment_id=A1, response="declined")),
        ("matching", ev(4, "assignments.offered.v1", assignment_id=A2, attempt=2)),
        ("notify", ev(5, "assignments.responded.v1", assignment_id=A2, response="accepted")),
        ("notify", ev(6, "assignments.status_changed.v1", assignment_id=A2, status="en_route")),
        ("notify", ev(7, "assignments.status_changed.v1", assignment_id=A2, status="on_scene")),
        ("notify", ev(8, "assignments.status_changed.v1", assignment_id=A2, status="cleared")),
    ]


def parallel_lifecycle() -> list[tuple[str, Event]]:
    """A call offered to two teams at once that both declined, then to two more at once: the first
    accepted and did the job, the other's offer was withdrawn."""
    two = {"offered_with": 2}
    return [
        ("intake", ev(1, "calls.received.v1", decision=BEHAVIOURAL, received_at="2026-11-26T10:00:00Z")),
        ("matching", ev(2, "assignments.offered.v1", assignment_id="p1", attempt=1, **two)),
        ("matching", ev(3, "assignments.offered.v1", assignment_id="p2", attempt=1, **two)),
        ("notify", ev(4, "assignments.responded.v1", assignment_id="p1", response="declined", **two)),
        ("notify", ev(5, "assignments.responded.v1", assignment_id="p2", response="declined", **two)),
        ("matching", ev(6, "assignments.offered.v1", assignment_id="p3", attempt=2, **two)),
        ("matching", ev(7, "assignments.offered.v1", assignment_id=A2, attempt=2, **two)),
        ("notify", ev(8, "assignments.responded.v1", assignment_id=A2, response="accepted", **two)),
        (
            "matching",
            ev(9, "assignments.withdrawn.v1", assignment_id="p3", reason="accepted_by_another_team"),
        ),
        ("notify", ev(10, "assignments.status_changed.v1", assignment_id=A2, status="en_route")),
        ("notify", ev(11, "assignments.status_changed.v1", assignment_id=A2, status="on_scene")),
        ("notify", ev(12, "assignments.status_changed.v1", assignment_id=A2, status="cleared")),
    ]


def clean(events: list[tuple[str, Event]] | None = None) -> Snapshot:
    """A system at rest after that call (or the call of `events`), as every service would store it."""
    events = events or lifecycle()
    page = Event("p1", "agency.assignments.v1", CALL, {"assignment_id": A2, "kind": "offered"})
    consumers = {
        "intake": {"assignments.offered.v1", "assignments.responded.v1", "assignments.status_changed.v1"},
        "matching": {"calls.received.v1", "assignments.responded.v1", "assignments.status_changed.v1"},
        "notify": {"assignments.offered.v1", "assignments.withdrawn.v1"},
    }
    inbox = {s: {e.id for _, e in events if e.type in types} for s, types in consumers.items()}
    # Published by notify's relay in the pass that delivered the page, not through its outbox.
    delivered = Event(str(delivered_id("kafka", "p1")), "notifications.delivered.v1", CALL, {"call_id": CALL})
    inbox["audit"] = {e.id for _, e in events} | {delivered.id}
    return Snapshot(
        call_ids=[CALL],
        intake={CALL: "cleared"},
        matching_calls={CALL: "closed"},
        assignments=[
            Assignment(A1, CALL, "t1", "declined", 1, False),
            Assignment(A2, CALL, "t2", "cleared", 2, False),
        ],
        notify_assignments=[
            Assignment(A1, CALL, "t1", "declined", None, False),
            Assignment(A2, CALL, "t2", "cleared", None, False),
        ],
        teams=[Team("t1", "available", None), Team("t2", "available", None)],
        outbox=[
            *[OutboxRow(schema, n, e.type, True, e) for n, (schema, e) in enumerate(events, 1)],
            OutboxRow("notify", 99, AGENCY_TOPIC, True, page, 1),
        ],
        inbox=inbox,
        inbox_types={**consumers, "audit": {e.type for _, e in events} | {delivered.type}},
        trail=[*(e for _, e in events), delivered],
        deliveries=[Delivery("p1", A2, "offered", 1)],
        agency_messages=[AgencyMessage(AGENCY_TOPIC, "p1", A2, "offered", 1)],
        chain_ok=True,
    )


def kinds(snap: Snapshot) -> dict[str, int]:
    """Only the kinds with problems."""
    verdict = judge(snap)
    return {k: n for k in KINDS if (n := verdict.count(k))}


def test_a_clean_snapshot_passes() -> None:
    verdict = judge(clean())
    assert verdict.passed, verdict.examples()
    # The call's outcome, counted as the oversight report counts it.
    assert verdict.info["behavioural_health"] == 1 and verdict.info["outcome.served_without_police"] == 1


def parallel_clean() -> Snapshot:
    """The parallel call at rest: four offers over two attempts, one team did the job."""
    ended = [("p1", "t1", "declined", 1), ("p2", "t3", "declined", 1), ("p3", "t4", "withdrawn", 2)]
    rows = [*(Assignment(a, CALL, t, st, n, False) for a, t, st, n in ended)]
    rows.append(Assignment(A2, CALL, "t2", "cleared", 2, False))
    teams = [Team(t, "available", None) for t in ("t1", "t2", "t3", "t4")]
    return replace(
        clean(parallel_lifecycle()),
        assignments=rows,
        notify_assignments=[replace(a, attempt=None) for a in rows],
        teams=teams,
    )


def test_offers_of_one_attempt_made_at_once_are_neither_repeats_nor_out_of_order() -> None:
    """Two offers of attempt 1 would be a duplicated attempt, and the next attempt after one of them
    out of order, but for `offered_with`: the checker counts them as the offers say."""
    verdict = judge(parallel_clean())
    assert verdict.passed, verdict.examples()
    assert verdict.info["outcome.served_without_police"] == 1


def test_out_of_order_the_next_attempt_while_one_of_the_parallel_offers_was_open() -> None:
    snap = parallel_clean()
    snap.trail = [e for e in snap.trail if e.id != "e4"]
    snap.outbox = [r for r in snap.outbox if r.event.id != "e4"]
    found = judge(snap)
    assert "next:a2" in found.problems["out_of_order"] or "next:p3" in found.problems["out_of_order"]


def test_duplicated_more_offers_in_an_attempt_than_it_made_at_once() -> None:
    snap = parallel_clean()
    extra = ev(13, "assignments.offered.v1", assignment_id="p9", attempt=2, offered_with=2)
    snap.trail = [*snap.trail, extra]
    found = judge(snap)
    assert "trail:attempt:c1:2" in found.problems["duplicated"]


def test_inconsistent_a_call_the_trail_says_was_served_that_intake_handed_back() -> None:
    snap = clean()
    snap.intake[CALL] = "handed_back"
    found = judge(snap)
    assert "outcome:c1" in found.problems["inconsistent"]


def test_a_broken_chain_fails() -> None:
    assert not judge(replace(clean(), chain_ok=False)).passed


def test_lost_an_outbox_row_missing_from_the_trail() -> None:
    snap = clean()
    snap.trail = [e for e in snap.trail if e.id != "e6"]
    assert kinds(snap) == {"lost": 1}


def test_lost_an_event_missing_from_one_consumer_inbox() -> None:
    snap = clean()
    snap.inbox["matching"].discard("e5")
    assert kinds(snap) == {"lost": 1}


def test_lost_an_agency_message_never_on_its_topic() -> None:
    snap = clean()
    snap.agency_messages = []
    assert kinds(snap) == {"lost": 1}


def test_lost_a_delivery_whose_event_never_reached_the_trail() -> None:
    snap = clean()
    snap.trail = [e for e in snap.trail if e.type != "notifications.delivered.v1"]
    assert kinds(snap) == {"lost": 1}


def test_lost_a_dead_letter_of_a_real_event() -> None:
    snap = clean()
    snap.dead_letters = [
        DeadLetter("dlq.matching", "assignments.responded.v1", "failed", "CannotConnectNow", snap.trail[4])
    ]
    assert kinds(snap) == {"lost": 1}


def test_poison_dead_letters_count_only_beyond_what_was_injected() -> None:
    snap = clean()
    snap.dead_letters = [DeadLetter("dlq.matching", "calls.received.v1", "undecodable", "", None)] * 3
    assert judge(snap, {"calls.received.v1": 3}).passed
    assert kinds(snap) == {"lost": 3}


def test_duplicated_two_live_assignments_for_a_call() -> None:
    snap = clean()
    snap.intake[CALL] = "on_scene"
    snap.assignments = [replace(a, status="on_scene") for a in snap.assignments]
    found = judge(snap)
    assert "live-call:c1" in found.problems["duplicated"]


def test_duplicated_the_same_status_twice_with_different_ids() -> None:
    snap = clean()
    again = Event("e9", "assignments.status_changed.v1", CALL, {"assignment_id": A2, "status": "on_scene"})
    snap.trail.append(again)
    assert kinds(snap) == {"duplicated": 1}


def test_duplicated_an_agency_paged_twice_for_one_page() -> None:
    snap = clean()
    snap.agency_messages.append(AgencyMessage(AGENCY_TOPIC, "p2", A2, "offered", 1))
    assert kinds(snap) == {"duplicated": 1}


def test_two_timers_missed_by_one_assignment_are_no_duplicate_but_one_timer_fired_twice_is() -> None:
    snap = clean()

    def missed(n: int, timer: str, due_at: str) -> Event:
        data = {"assignment_id": A2, "timer": timer, "due_at": due_at, "escalation": "agency_repaged"}
        return Event(f"m{n}", "assignments.timer_missed.v1", CALL, data)

    snap.trail += [
        missed(1, "check_in", "2026-11-26T10:20:00Z"),
        missed(2, "check_in", "2026-11-26T10:40:00Z"),
    ]
    snap.agency_messages += [
        AgencyMessage(AGENCY_TOPIC, "r1", A2, "timer_missed", None),
        AgencyMessage(AGENCY_TOPIC, "r2", A2, "timer_missed", None),
    ]
    assert kinds(snap) == {}
    snap.trail.append(missed(3, "check_in", "2026-11-26T10:40:00Z"))
    assert kinds(snap) == {"duplicated": 1}


def test_stuck_an_unsent_outbox_row() -> None:
    snap = clean()
    snap.outbox[7] = replace(snap.outbox[7], sent=False)
    assert kinds(snap) == {"stuck": 1}


def test_stuck_an_offer_past_its_deadline_still_offered() -> None:
    snap = clean()
    snap.assignments.append(Assignment("a3", "c2", "t3", "offered", 1, True))
    found = judge(snap)
    assert "overdue:matching:a3" in found.problems["stuck"]


def test_stuck_a_team_held_by_a_finished_call() -> None:
    snap = clean()
    snap.teams[1] = Team("t2", "on_scene", CALL)
    found = judge(snap)
    assert f"team:t2:{CALL}" in found.problems["stuck"]


def test_stuck_a_team_of_capacity_above_one_still_holding_a_finished_call() -> None:
    """Its most recent call is live; an older one it still holds is finished."""
    snap = clean()
    snap.intake["c9"] = "accepted"
    snap.matching_calls["c9"] = "assigned"
    snap.teams[1] = Team("t2", "assigned", "c9", ("c9", CALL), 2)
    found = judge(snap)
    assert f"team:t2:{CALL}" in found.problems["stuck"]
    assert "team:t2:c9" not in found.problems["stuck"]


def test_inconsistent_a_team_counting_other_holds_than_it_has() -> None:
    snap = clean()
    snap.teams[0] = Team("t1", "available", None, (), 1)
    assert "team:t1" in judge(snap).problems["inconsistent"]


def test_stuck_a_consumer_group_behind() -> None:
    snap = clean()
    snap.lag = {"intake": {"assignments.offered.v1": 4}}
    assert kinds(snap) == {"stuck": 1}


def test_inconsistent_cancelled_at_intake_while_matching_holds_a_team() -> None:
    snap = clean()
    snap.trail = snap.trail[:5]
    snap.intake[CALL] = "cancelled"
    snap.matching_calls[CALL] = "cancelled"
    snap.assignments[1] = replace(snap.assignments[1], status="withdrawn")
    snap.notify_assignments[1] = replace(snap.notify_assignments[1], status="withdrawn")
    snap.teams[1] = Team("t2", "assigned", CALL)
    found = judge(snap)
    assert "call:c1" in found.problems["inconsistent"]


def test_inconsistent_matching_and_notify_disagree_about_an_assignment() -> None:
    snap = clean()
    snap.notify_assignments[0] = replace(snap.notify_assignments[0], status="expired")
    assert kinds(snap) == {"inconsistent": 1}


def test_inconsistent_intake_behind_the_trail() -> None:
    # What a clock behind did: the team cleared, the PSAP still sees "offered".
    snap = clean()
    snap.intake[CALL] = "offered"
    found = judge(snap)
    assert "intake:c1" in found.problems["inconsistent"]


def test_out_of_order_a_status_without_an_accept() -> None:
    snap = clean()
    snap.trail = [e for e in snap.trail if e.id != "e5"]
    snap.outbox = [r for r in snap.outbox if r.event.id != "e5"]
    assert kinds(snap) == {"out_of_order": 1}


def test_out_of_order_a_second_attempt_while_the_first_was_live() -> None:
    snap = clean()
    snap.trail = [e for e in snap.trail if e.id != "e3"]
    snap.outbox = [r for r in snap.outbox if r.event.id != "e3"]
    found = judge(snap)
    assert "next:a2" in found.problems["out_of_order"]


def test_order_is_causal_not_by_position_in_the_trail() -> None:
    # Audit reads several topics: a status may be appended before the accept it follows.
    snap = clean()
    snap.trail = [snap.trail[0], snap.trail[5], *snap.trail[1:5], *snap.trail[6:]]
    assert judge(snap).passed


def test_inconsistent_an_accept_and_an_expiry_of_one_offer() -> None:
    # Two places deciding the deadline: notify honoured the accept, matching expired the offer.
    snap = clean()
    snap.trail.append(Event("e9", "assignments.expired.v1", CALL, {"assignment_id": A2}))
    found = judge(snap)
    assert "assignment:a2" in found.problems["inconsistent"]


def test_a_withdrawal_racing_the_agencys_last_word_is_not_an_inconsistency() -> None:
    """A cancel against a decline: matching keeps withdrawn, notify declined, both in the trail;
    both say the offer is over and no team holds it."""
    snap = clean()
    snap.assignments[0] = replace(snap.assignments[0], status="withdrawn")
    snap.trail.append(Event("e9", "assignments.withdrawn.v1", CALL, {"assignment_id": A1}))
    assert judge(snap).count("inconsistent") == 0


def test_inconsistent_live_in_one_service_and_over_in_the_other() -> None:
    snap = clean()
    snap.notify_assignments[1] = replace(snap.notify_assignments[1], status="withdrawn")
    snap.assignments[1] = replace(snap.assignments[1], status="on_scene")
    assert judge(snap).count("inconsistent") >= 1


def test_inconsistent_two_agency_endings_of_one_offer() -> None:
    snap = clean()
    snap.trail.append(Event("e9", "assignments.expired.v1", CALL, {"assignment_id": A1}))
    assert "assignment:a1" in judge(snap).problems["inconsistent"]


def test_a_psap_reroute_racing_the_teams_clearance_is_not_an_inconsistency() -> None:
    """The team cleared while the PSAP routed the call to police: intake shows the PSAP's own last
    decision, matching keeps the call closed (it refused the late re-route); no team holds it."""
    snap = clean()
    update = Event("e9", "calls.updated.v1", CALL, {"call_id": CALL, "decision": {"route": "police"}})
    snap.trail.append(update)
    snap.intake[CALL] = "routed_police"
    assert judge(snap).count("inconsistent") == 0


def test_a_call_takers_override_racing_the_teams_clearance_is_not_an_inconsistency() -> None:
    """The same race through an override: the trail counts the call served (the team cleared it),
    intake shows the override to police. Found by the full fault run (postgres-crash-15s)."""
    snap = clean()
    override = {
        "call_id": CALL,
        "decision": {"route": "police", "codes": [{"code": "override", "params": {}}], **BEHAVIOURAL_FLAG},
        "reason": "override",
        "previous_route": "community",
        "override_reason_code": "caller_request",
    }
    snap.trail.append(Event("e9", "calls.updated.v1", CALL, override))
    snap.intake[CALL] = "routed_police"
    verdict = judge(snap)
    assert verdict.count("inconsistent") == 0, verdict.examples()
    assert verdict.info["outcome.served_without_police"] == 1


def test_a_reroute_matching_read_before_the_teams_clearance_may_leave_the_call_handed_back() -> None:
    """The same race, matching reading the re-route first: it withdrew the team (which had cleared
    at notify meanwhile) and handed the call back, so intake ends handed back while the trail counts
    the call served. Found by the full fault run of 6d04b43 (postgres-crash-60s)."""
    snap = clean()
    update = Event("e9", "calls.updated.v1", CALL, {"call_id": CALL, "decision": {"route": "police"}})
    back = Event(
        "e10", "calls.unassigned.v1", CALL, {"call_id": CALL, "reason_code": "withdrawn_by_psap_update"}
    )
    snap.trail += [update, back]
    snap.intake[CALL] = "handed_back"
    snap.matching_calls[CALL] = "unassigned"
    verdict = judge(snap)
    assert "outcome:c1" not in verdict.problems["inconsistent"], verdict.examples()
    snap.trail.remove(update)  # handed back with no re-route: a served call lost at intake
    assert "outcome:c1" in judge(snap).problems["inconsistent"]


def test_inconsistent_served_in_the_trail_routed_away_at_intake_with_no_reroute() -> None:
    snap = clean()
    snap.intake[CALL] = "routed_ems"
    assert "outcome:c1" in judge(snap).problems["inconsistent"]


def test_inconsistent_routed_away_at_intake_without_a_reroute_in_the_trail() -> None:
    snap = clean()
    snap.intake[CALL] = "routed_police"
    assert judge(snap).count("inconsistent") >= 1
