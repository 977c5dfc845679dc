"""A scenario of six calls whose oversight figures are known, with planted personal details."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import events, topics
from shared.envelope import Envelope, new_event

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
# Unique strings that must never appear in an oversight response or export.
PLANTED = ("Zelda Quimby-7731", "NARRATIVE-PLANT-4471", "+15415550199", "4471 Plantation Rd")
CLEAR = events.SafetyScreen(
    weapon="no", violence="no", medical="no", self_harm_imminent="no", crime_in_progress="no"
)
PLACE = events.Location(lat=44.050312, lon=-123.088934, address=PLANTED[3])
ELIGIBLE = ["incident type MNTL is eligible for a community response", "no safety exclusion applies"]


def _at(event: Envelope, seconds: float) -> Envelope:
    return event.model_copy(update={"time": T0 + timedelta(seconds=seconds)})


def codes_of(reasons: list[str]) -> list[dict[str, Any]]:
    """The codes intake gives beside these sentences (what oversight reads in their place)."""
    codes: list[dict[str, Any]] = []
    for r in reasons:
        if r.endswith("is eligible for a community response"):
            codes.append({"code": "type_eligible", "params": {"incident_type": r.split()[2]}})
        elif r.endswith("is not eligible for a community response"):
            codes.append({"code": "type_not_eligible", "params": {"route": "police"}})
        elif r.startswith("safety screen: "):
            question, _, rest = r.removeprefix("safety screen: ").partition(" ")
            kind = "safety_unknown" if "unknown" in rest else "safety_yes"
            codes.append({"code": kind, "params": {"question": question, "route": rest.rpartition(" ")[2]}})
        elif r == "no safety exclusion applies":
            codes.append({"code": "no_safety_exclusion", "params": {}})
    return codes


def received(
    call: str, route: str, reasons: list[str], at: float = 0, place: events.Location = PLACE
) -> Envelope:
    payload = events.CallReceived.model_validate(
        {
            "call_id": call,
            "psap_id": "valley-ecc",
            "external_id": f"CAD-{call}",
            "incident_type": "MNTL",
            "location": place.model_dump(),
            "safety": CLEAR.model_dump(),
            "callback_number": PLANTED[2],
            "decision": {
                "route": route,
                "reasons": reasons,
                "rules_version": "t",
                "codes": codes_of(reasons),
            },
            "received_at": (T0 + timedelta(seconds=at)).isoformat(),
            "caller_name": PLANTED[0],
            "narrative": PLANTED[1],
        }
    )
    return _at(new_event(topics.CALLS_RECEIVED, "intake", call, payload), at)


def _ref(call: str, n: int, agency: str) -> dict[str, str]:
    return {"assignment_id": f"{call}-a{n}", "call_id": call, "agency_id": agency, "team_id": f"{agency}-1"}


def offered(call: str, n: int, agency: str, at: float) -> Envelope:
    offer = events.OfferDetails(
        location=PLACE, presenting_problem="MNTL", safety=CLEAR, callback_number=PLANTED[2]
    )
    payload = events.AssignmentOffered(**_ref(call, n, agency), attempt=n, deadline=T0, offer=offer)
    return _at(new_event(topics.ASSIGNMENTS_OFFERED, "matching", call, payload), at)


def responded(call: str, n: int, agency: str, at: float, answer: str) -> Envelope:
    payload = events.AssignmentResponded.model_validate(
        {
            **_ref(call, n, agency),
            "response": answer,
            "responded_at": T0.isoformat(),
            "reason_text": PLANTED[1],
        }
    )
    return _at(new_event(topics.ASSIGNMENTS_RESPONDED, "notify", call, payload), at)


def status(call: str, n: int, agency: str, at: float, value: str, disposition: str | None = None) -> Envelope:
    payload = events.AssignmentStatusChanged.model_validate(
        {**_ref(call, n, agency), "status": value, "disposition": disposition, "reported_at": T0.isoformat()}
    )
    return _at(new_event(topics.ASSIGNMENTS_STATUS_CHANGED, "notify", call, payload), at)


def timer_missed(call: str, n: int, agency: str, at: float, timer: str, escalation: str) -> Envelope:
    payload = events.TimerMissed.model_validate(
        {
            **_ref(call, n, agency),
            "attempt": n,
            "timer": timer,
            "escalation": escalation,
            "due_at": T0.isoformat(),
            "missed_at": T0.isoformat(),
        }
    )
    return _at(new_event(topics.ASSIGNMENTS_TIMER_MISSED, "notify", call, payload), at)


def unassigned(call: str, reason: str, at: float) -> Envelope:
    payload = events.CallUnassigned(call_id=call, psap_id="valley-ecc", reason_code=reason)
    return _at(new_event(topics.CALLS_UNASSIGNED, "matching", call, payload), at)


def scenario() -> list[Envelope]:
    """c1 diverted by A (settled by contact); c2 declined by A, taken by B, a backup request, then
    transported by law enforcement; c3 no team on shift;
    c4 behavioural health but a weapon; c5 not behavioural health; c6 offered, nobody answered."""
    weapon = [
        "incident type MNTL is eligible for a community response",
        "safety screen: weapon = yes -> police",
    ]
    return [
        received("c1", "community", ELIGIBLE),
        offered("c1", 1, "agency-a", 60),
        responded("c1", 1, "agency-a", 120, "accepted"),
        status("c1", 1, "agency-a", 720, "on_scene"),
        status("c1", 1, "agency-a", 1800, "cleared", "18"),
        received("c2", "community", ELIGIBLE),
        offered("c2", 1, "agency-a", 30),
        responded("c2", 1, "agency-a", 50, "declined"),
        offered("c2", 2, "agency-b", 90),
        responded("c2", 2, "agency-b", 150, "accepted"),
        status("c2", 2, "agency-b", 450, "on_scene"),
        status("c2", 2, "agency-b", 500, "backup_requested"),
        status("c2", 2, "agency-b", 900, "cleared", "33"),
        received("c3", "community", ELIGIBLE),
        unassigned("c3", "no_team_on_shift", 5),
        received("c4", "police", weapon),
        received("c5", "police", ["incident type 10-50 is not eligible for a community response"]),
        received("c6", "community", ELIGIBLE),
        offered("c6", 1, "agency-a", 20),
        unassigned("c6", "no_acceptance_in_time", 200),
    ]


EXPECTED: dict[str, Any] = {
    "funnel": {
        "received": 6,
        "behavioural_health": 5,
        "eligible": 4,
        "offered": 3,
        "accepted": 2,
        "on_scene": 2,
        "cleared": 2,
        "cleared_without_police": 1,
        "cleared_with_police": 1,
    },
    # c5's type is not behavioural health; each of the other five has one outcome.
    "outcomes": {
        "behavioural_health": 5,
        "totals": {
            "served_without_police": 1,
            "served_with_police": 1,
            "in_progress": 0,
            "awaiting_team": 0,
            "transferred_to_988": 0,
            "awaiting_988": 0,
            "handed_back": 2,
            "cancelled_by_psap": 0,
            "overridden": 0,
            "coverage_gap": 0,
            "not_eligible": 1,
            "review_resolved": 0,
            "review_pending": 0,
            "review_unresolved_past_deadline": 0,
        },
        "reasons": {
            "served_without_police": {"disposition:18": 1},
            "served_with_police": {"backup_requested": 1},
            "in_progress": {},
            "awaiting_team": {},
            "transferred_to_988": {},
            "awaiting_988": {},
            "handed_back": {"no_acceptance_in_time": 1, "no_team_on_shift": 1},
            "cancelled_by_psap": {},
            "overridden": {},
            "coverage_gap": {},
            "not_eligible": {"safety_yes:weapon": 1},
            "review_resolved": {},
            "review_pending": {},
            "review_unresolved_past_deadline": {},
        },
    },
    "overrides": {},
    "hand_backs": {"no_acceptance_in_time": 1, "no_team_on_shift": 1},
    "backup_requests": 1,
    "coverage_gaps_by_hour_utc": {"3": 1},
    # Monday 03:00 UTC, the hour of the week counted from Monday 00:00 (in UTC, no zone being given).
    "timezone": "UTC",
    "coverage_gaps_by_hour_of_week": [int(slot == 3) for slot in range(168)],
    "times_by_agency": {
        "agency-a": {
            "received_to_offered_s": {"count": 3, "p50": 30.0, "p90": 60.0, "p99": 60.0},
            "received_to_accepted_s": {"count": 1, "p50": 120.0, "p90": 120.0, "p99": 120.0},
            "received_to_on_scene_s": {"count": 1, "p50": 720.0, "p90": 720.0, "p99": 720.0},
            "offered_to_accepted_s": {"count": 1, "p50": 60.0, "p90": 60.0, "p99": 60.0},
            "accepted_to_on_scene_s": {"count": 1, "p50": 600.0, "p90": 600.0, "p99": 600.0},
        },
        "agency-b": {
            "received_to_offered_s": {"count": 0, "p50": None, "p90": None, "p99": None},
            "received_to_accepted_s": {"count": 1, "p50": 150.0, "p90": 150.0, "p99": 150.0},
            "received_to_on_scene_s": {"count": 1, "p50": 450.0, "p90": 450.0, "p99": 450.0},
            "offered_to_accepted_s": {"count": 1, "p50": 60.0, "p90": 60.0, "p99": 60.0},
            "accepted_to_on_scene_s": {"count": 1, "p50": 300.0, "p90": 300.0, "p99": 300.0},
        },
    },
    # From each 202 to an accepting team or a hand-back: c3 handed back at 5 s, c1 accepted at 120,
    # c2 at 150 (after A declined), c6 handed back at 200; [5, 120, 150, 200] by nearest rank: the
    # 2nd, the 4th and the 4th. c4 and c5 never went to matching.
    "time_to_commitment_s": {"count": 4, "p50": 120.0, "p90": 200.0, "p99": 200.0},
    # No call went to the 988 line.
    "follow_ups": {
        "transferred": 0,
        "open": 0,
        "overdue": 0,
        "closed": 0,
        "closed_late": 0,
        "by_outcome": {},
    },
    # No team let a timer run out (tests/unit/test_reports.py adds some).
    "missed_timers": {},
}


def updated(
    call: str, route: str, at: float, *, previous: str, override: str | None = None, **extra: Any
) -> Envelope:
    """A calls.updated.v1: an override as intake publishes it (its reason code), else a newer version."""
    reasons = [f"override by the call-taker: {override}"] if override else ELIGIBLE
    payload = events.CallUpdated.model_validate(
        {
            "call_id": call,
            "psap_id": "valley-ecc",
            "incident_type": "MNTL",
            "location": PLACE.model_dump(),
            "safety": CLEAR.model_dump(),
            "decision": {
                "route": route,
                "reasons": reasons,
                "rules_version": "t",
                "codes": [{"code": "override", "params": {"route": route, "reason": override}}]
                if override
                else codes_of(reasons),
            },
            "updated_at": (T0 + timedelta(seconds=at)).isoformat(),
            "reason": "override" if override else "eido_update",
            "previous_route": previous,
            "override_reason_code": override,
            **extra,
        }
    )
    return _at(new_event(topics.CALLS_UPDATED, "intake", call, payload), at)


def decided(call: str, route: str, codes: list[dict[str, Any]], at: float = 0, **decision: Any) -> Envelope:
    """A calls.received.v1 whose decision carries exactly these codes (and the `decision` fields)."""
    base = json.loads(received(call, route, []).to_bytes())["data"]
    base["decision"] |= {"codes": codes, **decision}
    payload = events.CallReceived.model_validate(base)
    return _at(new_event(topics.CALLS_RECEIVED, "intake", call, payload), at)


def cancelled(call: str, at: float) -> Envelope:
    payload = events.CallCancelled(call_id=call, psap_id="valley-ecc")
    return _at(new_event(topics.CALLS_CANCELLED, "intake", call, payload), at)


def follow_up(call: str, kind: str, at: float, **extra: Any) -> Envelope:
    """A follow_ups.<kind>.v1 of the 988 center's follow-up of `call`, due an hour after T0."""
    ref = {
        "follow_up_id": f"{call}-f",
        "call_id": call,
        "agency_id": "lane-988",
        "assignment_id": f"{call}-a1",
        "due_at": (T0 + timedelta(hours=1)).isoformat(),
    }
    payload = topics.REGISTRY[f"follow_ups.{kind}.v1"].model.model_validate({**ref, **extra})
    return _at(new_event(f"follow_ups.{kind}.v1", "notify", call, payload), at)
