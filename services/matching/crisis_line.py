"""The 988 route in matching, no I/O: a call triage sent to the crisis line is offered to the line's
agency alone (no team, no geography), and goes back to the PSAP once the center declined it or let
the offer expire."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# The team a 988 offer names: the center itself, which is no team of the roster.
CENTER = "988"


class Earlier(Protocol):
    """An earlier offer of the call, as matching stored it."""

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True)
class Offer:
    """Offer the call to the crisis line's agency."""

    agency_id: str


@dataclass(frozen=True)
class HandBack:
    """Give the call back to its PSAP: why, as a code and a sentence."""

    reason: str
    detail: str


def next_step(agency_id: str | None, earlier: Sequence[Earlier], paused: bool = False) -> Offer | HandBack:
    """What to do with a 988 call now: its first offer goes to the line; one answer ends it.

    The center is offered a call once: its decline (or silence until the deadline) means the line
    cannot take it, and the PSAP, not another team, decides what happens next. A center that has
    paused itself is not offered the call at all.
    """
    if agency_id is None:
        return HandBack("no_crisis_line", "the jurisdiction names no 988 crisis line")
    if not earlier and paused:
        return HandBack("crisis_line_paused", f"the 988 center {agency_id} has paused itself")
    if not earlier:
        return Offer(agency_id)
    last = earlier[-1]
    if last.status == "withdrawn" and last.reason == "agency_paused":
        return HandBack(
            "crisis_line_paused", f"the 988 center {agency_id} paused itself while offered the call"
        )
    if last.status == "expired":
        return HandBack("crisis_line_no_answer", f"the 988 center {agency_id} did not answer by the deadline")
    why = f" ({last.reason})" if last.reason else ""
    return HandBack(f"crisis_line_{last.status}", f"the 988 center {agency_id} {last.status} the call{why}")
