"""Judging a snapshot: lost, duplicated, stuck, inconsistent and out-of-order, as pure functions."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.audit import outcomes
from services.audit.stories import CallStory, fold, received
from services.notify.delivery import delivered_id
from shared.topics import AGENCY_TOPIC_PREFIX, NOTIFICATIONS_DELIVERED, REGISTRY
from tools.faults.snapshot import (
    INTAKE_AT_REST,
    LIVE,
    MATCHING_AT_REST,
    MATCHING_LIVE,
    Assignment,
    Event,
    Snapshot,
)

KINDS = ("lost", "duplicated", "stuck", "inconsistent", "out_of_order")
TEAM_BUSY = {"offered", "assigned", "en_route", "on_scene"}
# The ends an assignment can have; it has at most one, and declined or expired never follow an accept.
ENDS = {"declined", "expired", "withdrawn", "cleared"}

RECEIVED = "calls.received.v1"
CANCELLED = "calls.cancelled.v1"
CALLS_UPDATED = "calls.updated.v1"
UNASSIGNED = "calls.unassigned.v1"
OFFERED = "assignments.offered.v1"
RESPONDED = "assignments.responded.v1"
EXPIRED = "assignments.expired.v1"
WITHDRAWN = "assignments.withdrawn.v1"
STATUS = "assignments.status_changed.v1"
TIMER_MISSED = "assignments.timer_missed.v1"
ASSIGNMENT_TYPES = (OFFERED, RESPONDED, EXPIRED, WITHDRAWN, STATUS)


@dataclass
class Verdict:
    """Every problem found, by kind, keyed by what it is about (a key is counted once)."""

    calls: int = 0
    chain_ok: bool = False
    problems: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    info: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, key: str, text: str) -> None:
        """Record one problem; the same key of the same kind again is the same problem."""
        self.problems[kind].setdefault(key, text)

    def count(self, kind: str) -> int:
        """How many distinct problems of `kind`."""
        return len(self.problems[kind])

    @property
    def passed(self) -> bool:
        """No problem of any kind, and a verified chain."""
        return self.chain_ok and not any(self.problems.values())

    def examples(self, per_kind: int = 5) -> list[str]:
        """The first few problems of each kind, for the report."""
        return [f"{kind}: {text}" for kind in KINDS for text in list(self.problems[kind].values())[:per_kind]]

    def summary(self) -> dict[str, object]:
        """Counts, the chain, the information figures and examples, as the results file keeps them."""
        return {
            "calls": self.calls,
            **{kind: self.count(kind) for kind in KINDS},
            "chain_ok": self.chain_ok,
            "passed": self.passed,
            "info": dict(self.info),
            "examples": self.examples(),
        }


def judge(snap: Snapshot, poisoned: dict[str, int] | None = None) -> Verdict:
    """Every rule over one snapshot; `poisoned` (topic -> count) poison messages may be dead letters."""
    verdict = Verdict(calls=len(snap.call_ids), chain_ok=snap.chain_ok)
    check_lost(snap, verdict, poisoned or {})
    check_duplicated(snap, verdict)
    check_stuck(snap, verdict)
    check_inconsistent(snap, verdict)
    check_order(snap, verdict)
    fates = check_outcomes(snap, verdict)
    verdict.info = {
        "behavioural_health": len(fates),
        **{f"outcome.{code}": n for code, n in Counter(o.code for o in fates.values()).items()},
        "outbox_rows": len(snap.outbox),
        "trail_rows": len(snap.trail),
        "agency_messages": len(snap.agency_messages),
        "dead_letters": len(snap.dead_letters),
        **snap.counts,
        **{f"pending.{q}": n for q, n in snap.pending.items()},
    }
    return verdict


def followers(snap: Snapshot, topic: str) -> list[str]:
    """The services whose consumer follows `topic`: those that processed an event of it, and audit."""
    found = {s for s, types in snap.inbox_types.items() if topic in types}
    if topic in REGISTRY:
        found.add("audit")
    return sorted(found)


def check_lost(snap: Snapshot, v: Verdict, poisoned: dict[str, int] | None = None) -> None:
    """Per event: answered calls stored, every published event in the trail and in each follower's
    inbox, every agency message on its topic and recorded delivered, and no dead letter of a real event."""
    received = {e.subject for e in snap.trail if e.type == RECEIVED}
    queued = {r.event.subject for r in snap.outbox if r.event.type == RECEIVED}
    for call_id in snap.call_ids:
        if call_id not in snap.intake:
            v.add("lost", f"call:{call_id}", f"{call_id}: answered 202, not stored by intake")
        elif call_id not in received and call_id not in queued:
            v.add("lost", f"call:{call_id}", f"{call_id}: stored by intake with no calls.received.v1")
    trail_ids = {e.id for e in snap.trail}
    on_agency_topics = {m.event_id for m in snap.agency_messages}
    delivered = {d.notification_id for d in snap.deliveries}
    for row in snap.outbox:
        if not row.sent:
            continue  # stuck, not lost (check_stuck)
        e = row.event
        where: list[str] = []
        if row.topic.startswith(AGENCY_TOPIC_PREFIX):
            if e.id not in on_agency_topics:
                where.append(f"topic {row.topic}")
            if e.id not in delivered:
                where.append("notify.deliveries")
        else:
            if e.id not in trail_ids:
                where.append("the audit trail")
            where += [
                f"{s}'s inbox" for s in followers(snap, row.topic) if e.id not in snap.inbox.get(s, set())
            ]
        if where:
            v.add(
                "lost",
                f"event:{e.id}",
                f"{e.type} {e.id} of {e.subject} ({row.schema}): missing from {', '.join(where)}",
            )
    # A delivery's event goes out in the relay's pass, not through the outbox: looked for by its id.
    for delivery in snap.deliveries:
        event_id = str(delivered_id("kafka", delivery.notification_id))
        where = [] if event_id in trail_ids else ["the audit trail"]
        where += [
            f"{s}'s inbox"
            for s in followers(snap, NOTIFICATIONS_DELIVERED)
            if event_id not in snap.inbox.get(s, set())
        ]
        if where:
            v.add(
                "lost",
                f"event:{event_id}",
                f"{NOTIFICATIONS_DELIVERED} {event_id} of delivery {delivery.notification_id}: missing from"
                f" {', '.join(where)}",
            )
    # The topic and the service's table may both hold one dead letter: each is counted on its own
    # and a key names it the same way from either, so it is one problem.
    undecodable: dict[tuple[str, str, str], int] = defaultdict(int)
    for d in snap.dead_letters:
        if d.event is None:
            undecodable[(d.where, d.topic, d.origin_topic)] += 1
            n = undecodable[(d.where, d.topic, d.origin_topic)]
            if n > (poisoned or {}).get(d.origin_topic, 0):
                v.add(
                    "lost",
                    f"dlq:{d.topic}:{d.origin_topic}:{n}",
                    f"{d.topic}: an undecodable dead letter from {d.origin_topic} nobody injected",
                )
            continue
        v.add(
            "lost",
            f"event:{d.event.id}",  # the event is lost once, however many places miss it
            f"{d.event.type} {d.event.id} of {d.event.subject} dead-lettered to {d.topic}"
            f" ({d.reason}: {d.error[:120]})",
        )


def _live(assignments: Iterable[Assignment]) -> list[Assignment]:
    return [a for a in assignments if a.status in LIVE]


def parallel(live: list[Assignment]) -> bool:
    """Whether a call's live assignments are offers of one attempt, none accepted yet."""
    return len({a.attempt for a in live}) == 1 and all(a.status == "offered" for a in live)


def check_duplicated(snap: Snapshot, v: Verdict) -> None:
    """Repeated meaning: two live assignments for a call or a team, a step of an assignment twice,
    two offers of one attempt, an agency paged twice for one page."""
    for where, rows in (("matching", snap.assignments), ("notify", snap.notify_assignments)):
        by_call: dict[str, list[Assignment]] = defaultdict(list)
        by_team: dict[str, list[str]] = defaultdict(list)
        for a in _live(rows):
            by_call[a.call_id].append(a)
            by_team[a.team_id].append(a.id)
        for call_id, live in by_call.items():
            # Offers of one attempt still open side by side are parallel offers, not a repeat.
            if len(live) > 1 and not parallel(live):
                v.add(
                    "duplicated",
                    f"live-call:{call_id}",
                    f"{call_id}: {len(live)} live assignments in {where}",
                )
        for team_id, ids in by_team.items():
            if len(ids) > 1:
                v.add(
                    "duplicated",
                    f"live-team:{team_id}",
                    f"team {team_id}: {len(ids)} live assignments in {where}",
                )
    meaning: dict[tuple[str, ...], set[str]] = defaultdict(set)
    # An attempt of parallel offers offers as many teams as its offers say (`offered_with`).
    allowed: dict[tuple[str, ...], int] = defaultdict(lambda: 1)
    for e in snap.trail:
        if e.type in (RECEIVED, CANCELLED, UNASSIGNED):
            meaning[(e.type, e.subject)].add(e.id)
        elif e.type in (OFFERED, RESPONDED, EXPIRED, WITHDRAWN):
            meaning[(e.type, str(e.data.get("assignment_id")))].add(e.id)
            if e.type == OFFERED:
                attempt = ("attempt", e.subject, str(e.data.get("attempt")))
                meaning[attempt].add(str(e.data.get("assignment_id")))
                shared = e.data.get("offered_with")
                if isinstance(shared, int):
                    allowed[attempt] = max(allowed[attempt], shared)
        elif e.type == STATUS and e.data.get("status") != "backup_requested":
            meaning[(e.type, str(e.data.get("assignment_id")), str(e.data.get("status")))].add(e.id)
        elif e.type == TIMER_MISSED:
            # One assignment may miss several timers, or one check-in after another: a timer that
            # ran out (its due time) is missed once at each escalation.
            missed = ("assignment_id", "timer", "due_at", "escalation")
            meaning[(e.type, *(str(e.data.get(k)) for k in missed))].add(e.id)
    for what, same in meaning.items():
        if len(same) > allowed[what]:
            v.add(
                "duplicated", "trail:" + ":".join(what), f"{' '.join(what)}: {len(same)} times in the trail"
            )
    pages: dict[tuple[str, str, str, str], set[str]] = defaultdict(set)
    # Each missed timer is its own message (its repeats are found in the trail, above).
    for m in snap.agency_messages:
        if m.kind != "timer_missed":
            pages[(m.topic, m.assignment_id, m.kind, str(m.page))].add(m.event_id)
    for d in snap.deliveries:
        if d.kind != "timer_missed":
            pages[("delivered", d.assignment_id, d.kind, str(d.page))].add(d.notification_id)
    for (topic, assignment, kind, page), sent in pages.items():
        if len(sent) > 1:
            v.add(
                "duplicated",
                f"page:{assignment}:{kind}:{page}",
                f"assignment {assignment}: {kind} page {page} sent {len(sent)} times ({topic})",
            )


def check_stuck(snap: Snapshot, v: Verdict) -> None:
    """Not at rest: a call in any service, a live assignment, an unsent row, an overdue offer,
    a team held by a finished call or by none, a consumer group behind."""
    for call_id, status in snap.intake.items():
        if status not in INTAKE_AT_REST:
            v.add("stuck", f"intake:{call_id}", f"{call_id}: {status} at intake")
    for call_id, status in snap.matching_calls.items():
        if status in MATCHING_LIVE:
            v.add("stuck", f"matching:{call_id}", f"{call_id}: {status} in matching")
    for where, rows in (("matching", snap.assignments), ("notify", snap.notify_assignments)):
        for a in rows:
            if a.overdue:
                v.add(
                    "stuck",
                    f"overdue:{where}:{a.id}",
                    f"assignment {a.id} of {a.call_id}: offered past its deadline in {where}",
                )
            elif a.status in LIVE:
                v.add(
                    "stuck",
                    f"live:{where}:{a.id}",
                    f"assignment {a.id} of {a.call_id}: still {a.status} in {where}",
                )
    for row in snap.outbox:
        if not row.sent:
            v.add(
                "stuck",
                f"outbox:{row.schema}:{row.row}",
                f"{row.schema}.outbox row {row.row} ({row.event.type}) never sent",
            )
    for t in snap.teams:
        held = sorted({*t.holds, *([t.current_call] if t.current_call else [])})
        if not held and t.status in TEAM_BUSY:
            v.add("stuck", f"team:{t.id}", f"team {t.id}: {t.status} with no call")
        for call_id in held:
            done_at_intake = snap.intake.get(call_id) in INTAKE_AT_REST
            done_in_matching = snap.matching_calls.get(call_id) not in (None, *MATCHING_LIVE)
            if done_at_intake or done_in_matching:
                v.add(
                    "stuck",
                    f"team:{t.id}:{call_id}",
                    f"team {t.id}: {t.status}, held by {call_id}, which is"
                    f" {snap.intake.get(call_id)} at intake"
                    f" and {snap.matching_calls.get(call_id)} in matching",
                )
    for group, topics in snap.lag.items():
        for topic, behind in topics.items():
            v.add("stuck", f"lag:{group}:{topic}", f"{group} is {behind} records behind on {topic}")


def _by_call(events: Iterable[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e.subject].append(e)
    return out


def _steps(events: list[Event]) -> dict[str, set[str]]:
    """Each assignment's steps in the trail: offered, accepted, declined, expired, withdrawn, statuses."""
    steps: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.type not in ASSIGNMENT_TYPES:
            continue
        a = str(e.data.get("assignment_id"))
        if e.type == OFFERED:
            steps[a].add("offered")
        elif e.type == RESPONDED:
            steps[a].add(str(e.data.get("response")))
        elif e.type == EXPIRED:
            steps[a].add("expired")
        elif e.type == WITHDRAWN:
            steps[a].add("withdrawn")
        else:
            steps[a].add(str(e.data.get("status")))
    return steps


def _attempts(events: list[Event], snap: Snapshot) -> dict[str, int]:
    """Each assignment's attempt: carried by its offer (or any of its events), else matching's row."""
    attempt = {a.id: a.attempt for a in snap.assignments if a.attempt is not None}
    for e in events:
        n = e.data.get("attempt")
        if e.type in ASSIGNMENT_TYPES and isinstance(n, int):
            attempt[str(e.data.get("assignment_id"))] = n
    return {a: n for a, n in attempt.items() if n is not None}


ROUTED_AWAY = ("routed_police", "routed_ems", "routed_fire", "routed_review")


def rerouted(events: Iterable[Event]) -> bool:
    """Whether the PSAP routed the call away from a community response (an update or override)."""
    return any(
        e.type == CALLS_UPDATED and (e.data.get("decision") or {}).get("route") not in (None, "community")
        for e in events
    )


def rerouted_calls(snap: Snapshot) -> set[str]:
    """The calls whose trail holds a PSAP's re-route away from a community response."""
    return {call_id for call_id, events in _by_call(snap.trail).items() if rerouted(events)}


def expected_intake(events: list[Event], snap: Snapshot) -> tuple[str, ...] | None:
    """The statuses intake may show, from the trail in causal order (None: the trail does not say).

    A PSAP's re-route and the team's clearance race by design (neither causes the other): intake
    then shows the PSAP's own last decision, with the clearance in the timeline, while matching,
    which read the clearance first, keeps the call closed and refuses the late re-route.
    """
    types = {e.type for e in events}
    if CANCELLED in types:
        return ("cancelled",)
    if UNASSIGNED in types:
        # A PSAP update that routes the call elsewhere also hands it back.
        return ("handed_back", *ROUTED_AWAY) if CALLS_UPDATED in types else ("handed_back",)
    attempts = _attempts(events, snap)
    steps = _steps(events)
    offered = [a for a in steps if "offered" in steps[a] and a in attempts]
    if not offered:
        return None
    last = max(attempts[a] for a in offered)
    # Of an attempt of parallel offers, the one team that took the call.
    if not any("cleared" in steps[a] for a in offered if attempts[a] == last):
        return None
    return ("cleared", *ROUTED_AWAY) if rerouted(events) else ("cleared",)


def agree(in_matching: str, in_notify: str) -> bool:
    """Whether matching's and notify's states of one assignment tell the same story.

    Matching's withdrawal and the agency's last word race by design (a cancel against a decline, an
    expiry or a clear): each service refuses the other's late step, so one keeps `withdrawn` and
    the other the agency's ending. Both say the assignment is over and no team holds it: they agree.
    Any other difference (live in one and over in the other, two agency endings) is a disagreement.
    """
    if in_matching == in_notify:
        return True
    return "withdrawn" in (in_matching, in_notify) and in_matching in ENDS and in_notify in ENDS


def one_ending(steps: set[str]) -> bool:
    """Whether an assignment's steps in the trail end once: one agency ending at most (declined,
    expired or cleared; a raced withdrawal may stand beside it, see `agree`), and an accepted offer
    never also declined or expired (two places deciding its deadline)."""
    ends = steps & ENDS
    return len(ends - {"withdrawn"}) <= 1 and not ("accepted" in steps and ends & {"declined", "expired"})


def check_inconsistent(snap: Snapshot, v: Verdict) -> None:
    """Services that disagree about a call or an assignment, and intake against the trail."""
    live_m = {a.call_id for a in _live(snap.assignments)}
    live_n = {a.call_id for a in _live(snap.notify_assignments)}
    held = {call_id: t.id for t in snap.teams for call_id in (*t.holds, t.current_call) if call_id}
    away = rerouted_calls(snap)
    for call_id, status in snap.intake.items():
        in_matching = snap.matching_calls.get(call_id)
        holding = [
            f"team {held[call_id]} held" if call_id in held else "",
            "a live assignment in matching" if call_id in live_m else "",
            "a live assignment in notify" if call_id in live_n else "",
        ]
        holding = [h for h in holding if h]
        disagree = None
        if status == "cancelled" and (holding or in_matching not in (None, *MATCHING_AT_REST)):
            disagree = "cancelled at intake"
        elif status == "cleared" and (holding or in_matching != "closed"):
            disagree = "cleared at intake"
        elif status == "handed_back" and (holding or in_matching not in (None, "unassigned", "cancelled")):
            disagree = "handed back at intake"
        elif (
            in_matching == "closed"
            and status not in ("cleared", "cancelled")
            and not (status in ROUTED_AWAY and call_id in away)
        ) or (
            in_matching == "unassigned"
            and status not in ("handed_back", "cancelled")
            and not status.startswith("routed_")
        ):
            disagree = f"{status} at intake"
        if disagree:
            v.add(
                "inconsistent",
                f"call:{call_id}",
                f"{call_id}: {disagree}, {in_matching} in matching"
                + (f", {', '.join(holding)}" if holding else ""),
            )
    for t in snap.teams:
        if t.held != len(t.holds):
            v.add(
                "inconsistent",
                f"team:{t.id}",
                f"team {t.id}: counts {t.held} calls held, matching.holds has {len(t.holds)}",
            )
    notify_status = {a.id: a.status for a in snap.notify_assignments}
    for a in snap.assignments:
        other = notify_status.get(a.id)
        if other is not None and not agree(a.status, other):
            v.add(
                "inconsistent",
                f"assignment:{a.id}",
                f"assignment {a.id} of {a.call_id}: {a.status} in matching, {other} in notify",
            )
    for call_id, events in _by_call(e for e in snap.trail if e.subject in snap.intake).items():
        for aid, steps in _steps(events).items():
            if not one_ending(steps):
                v.add(
                    "inconsistent",
                    f"assignment:{aid}",
                    f"assignment {aid} of {call_id}: {', '.join(sorted(steps))} in the trail",
                )
        want = expected_intake(events, snap)
        if want is not None and snap.intake.get(call_id) not in want:
            v.add(
                "inconsistent",
                f"intake:{call_id}",
                f"{call_id}: {snap.intake.get(call_id)} at intake, the trail says {' or '.join(want)}",
            )


def check_order(snap: Snapshot, v: Verdict) -> None:
    """Causal order within each call, by (attempt, lifecycle step), never by event time: every step
    of an assignment has its offer, a status its accept, an offer its predecessor's end, and no offer
    follows the hand-back or the cancel that ended the call."""
    for call_id, events in _by_call(snap.trail).items():
        types = {e.type for e in events}
        if types & set(ASSIGNMENT_TYPES) and RECEIVED not in types:
            v.add(
                "out_of_order",
                f"received:{call_id}",
                f"{call_id}: assignment events without calls.received.v1",
            )
        steps = _steps(events)
        attempts = _attempts(events, snap)
        for a, seen in steps.items():
            if "offered" not in seen:
                v.add(
                    "out_of_order",
                    f"offer:{a}",
                    f"assignment {a} of {call_id}: {', '.join(sorted(seen))} with no offer",
                )
            if seen & {"en_route", "on_scene", "cleared", "backup_requested"} and "accepted" not in seen:
                v.add("out_of_order", f"accept:{a}", f"assignment {a} of {call_id}: a status with no accept")
        order = sorted((n, a) for a, n in attempts.items() if a in steps and "offered" in steps[a])
        # Every offer of an attempt (several, for parallel offers) ended before the next attempt.
        for (n, a), (m, b) in itertools.combinations(order, 2):
            if m > n and not steps[a] & ENDS:
                v.add(
                    "out_of_order",
                    f"next:{b}",
                    f"{call_id}: attempt {m} offered while attempt {n} ({a}) had not ended",
                )
        last = max((n for n, _ in order), default=0)
        for e in events:
            if e.type == UNASSIGNED and isinstance(e.data.get("attempts"), int) and last > e.data["attempts"]:
                v.add(
                    "out_of_order",
                    f"handback:{call_id}",
                    f"{call_id}: attempt {last} offered after a hand-back at {e.data['attempts']}",
                )
            if e.type == WITHDRAWN and e.data.get("reason") == "cancelled_by_psap":
                n = attempts.get(str(e.data.get("assignment_id")), 0)
                if last > n:
                    v.add(
                        "out_of_order",
                        f"cancel:{call_id}",
                        f"{call_id}: attempt {last} offered after the cancel withdrew attempt {n}",
                    )


# The trail's events carry their own times; the checker's snapshot keeps only their order.
_UNTIMED = datetime(1970, 1, 1, tzinfo=UTC)


def call_outcomes(snap: Snapshot) -> dict[str, outcomes.Outcome]:
    """Every behavioural-health call's one outcome from the trail, as the oversight report counts it
    (no review deadline judged: the snapshot has no period end)."""
    calls: dict[str, CallStory] = defaultdict(CallStory)
    for e in snap.trail:
        fold(calls[e.subject], e.type, e.data, _UNTIMED)
    return outcomes.outcomes(received(calls), None)


def check_outcomes(snap: Snapshot, v: Verdict) -> dict[str, outcomes.Outcome]:
    """Each call's outcome in the trail against intake's own end of it: a call the trail says a team
    served is cleared (or, raced, cancelled or routed away by the PSAP) at intake, one it says the
    PSAP cancelled is cancelled."""
    found = call_outcomes(snap)
    away = rerouted_calls(snap)
    for call_id, o in found.items():
        status = snap.intake.get(call_id)
        if status is None:
            continue
        served = o.code in ("served_without_police", "served_with_police")
        # A PSAP's re-route racing the team's clearance: intake shows the PSAP's last decision, or
        # the hand-back with which matching, reading the re-route first, answered it.
        ends: tuple[str, ...] = ("cleared", "cancelled")
        if call_id in away:
            ends = (*ends, *ROUTED_AWAY, "handed_back")
        if (served and status not in ends) or (o.code == "cancelled_by_psap" and status != "cancelled"):
            v.add(
                "inconsistent", f"outcome:{call_id}", f"{call_id}: {o.key} in the trail, {status} at intake"
            )
    return found
