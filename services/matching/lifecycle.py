"""Matching's state machines: an assignment's life and a call's, as tables; pure, no I/O.

Every state change matching makes goes through `assignment_step` or `call_step`. Each answers the
new state (the same state for a repeat or a step that arrives after a later one, which changes
nothing) or a `Refusal` with a code: the handler records the refusal and applies nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

# What can happen to an assignment. `withdraw` is matching's own act; the rest come from notify.
ASSIGNMENT_INPUTS = ("accepted", "declined", "expired", "en_route", "on_scene", "cleared", "withdraw")
# An assignment holds its team in these states.
LIVE = ("offered", "accepted", "en_route", "on_scene")
# The agency's steps that claim the assignment is still theirs to work.
CLAIMS = ("accepted", "en_route", "on_scene", "cleared")

# state -> input -> next state. Answers and status reports come on two topics, so a status report
# may be read before the acceptance it follows: it implies the acceptance (notify takes no status
# report on an unaccepted offer).
ASSIGNMENT: dict[str, dict[str, str]] = {
    "offered": {
        "accepted": "accepted",
        "declined": "declined",
        "expired": "expired",
        "en_route": "en_route",
        "on_scene": "on_scene",
        "cleared": "cleared",
        "withdraw": "withdrawn",
    },
    "accepted": {
        "en_route": "en_route",
        "on_scene": "on_scene",
        "cleared": "cleared",
        "withdraw": "withdrawn",
    },
    "en_route": {"on_scene": "on_scene", "cleared": "cleared", "withdraw": "withdrawn"},
    "on_scene": {"cleared": "cleared", "withdraw": "withdrawn"},
    "cleared": {},
    "declined": {},
    "expired": {},
    "withdrawn": {},
}
# state -> inputs that are already behind it (a repeat, or an earlier step read late): no change.
ASSIGNMENT_BEHIND: dict[str, frozenset[str]] = {
    "offered": frozenset(),
    "accepted": frozenset({"accepted"}),
    "en_route": frozenset({"accepted", "en_route"}),
    "on_scene": frozenset({"accepted", "en_route", "on_scene"}),
    "cleared": frozenset({"accepted", "en_route", "on_scene", "cleared"}),
    "declined": frozenset({"declined"}),
    "expired": frozenset({"expired"}),
    "withdrawn": frozenset({"withdraw"}),
}

# What can happen to a call in matching.
CALL_INPUTS = ("offer", "accept", "hand_back", "cancel", "close", "reroute")
# `routed_away` is a pending record: an update took the call away before its `calls.received.v1`
# was read (the received call is then handed back, never offered; a later update back to
# `community` reroutes it). `cancelled` may also be such a record (a cancel read first): the call
# starts cancelled.
CALL: dict[str, dict[str, str]] = {
    "matching": {"offer": "offered", "hand_back": "unassigned", "cancel": "cancelled"},
    "offered": {
        "offer": "offered",
        "accept": "assigned",
        "hand_back": "unassigned",
        "cancel": "cancelled",
        "close": "closed",
    },
    "assigned": {"hand_back": "unassigned", "cancel": "cancelled", "close": "closed"},
    "routed_away": {"hand_back": "unassigned", "cancel": "cancelled", "reroute": "matching"},
    # A call handed back may still be cancelled by its PSAP: nothing of ours is working it.
    "unassigned": {"cancel": "cancelled"},
    "cancelled": {},
    "closed": {},
}
CALL_BEHIND: dict[str, frozenset[str]] = {
    "matching": frozenset(),
    "offered": frozenset(),
    "assigned": frozenset({"accept"}),
    "routed_away": frozenset(),
    "unassigned": frozenset({"hand_back"}),
    "cancelled": frozenset({"cancel"}),
    "closed": frozenset({"close", "accept"}),
}
# Calls in these states are live: matching may still offer them or a team may be working them.
LIVE_CALLS = ("matching", "offered", "assigned")


@dataclass(frozen=True)
class Refusal:
    """A step the state machine does not allow: nothing is applied, the refusal is recorded."""

    code: str
    detail: str


def _step(
    table: dict[str, dict[str, str]], behind: dict[str, frozenset[str]], state: str, step: str
) -> str | None:
    """The state after `step` from a machine's tables, or None when it does not allow it."""
    if step in behind[state]:
        return state
    return table[state].get(step)


def assignment_step(state: str, step: str) -> str | Refusal:
    """The assignment's state after `step`, or why it is refused."""
    if step not in ASSIGNMENT_INPUTS:
        raise ValueError(f"unknown assignment step {step!r}")
    nxt = _step(ASSIGNMENT, ASSIGNMENT_BEHIND, state, step)
    if nxt is not None:
        return nxt
    code = f"assignment_{state}" if state not in LIVE else f"{step}_while_{state}"
    return Refusal(code, f"cannot apply {step} to an assignment {state}")


def call_step(state: str, step: str) -> str | Refusal:
    """The call's state after `step`, or why it is refused."""
    if step not in CALL_INPUTS:
        raise ValueError(f"unknown call step {step!r}")
    nxt = _step(CALL, CALL_BEHIND, state, step)
    return nxt if nxt is not None else Refusal(f"call_{state}", f"cannot apply {step} to a call {state}")


def tells_agency_gone(refused_step: str) -> bool:
    """Whether a refused step was the agency acting on the assignment: it must hear it is gone."""
    return refused_step in CLAIMS
