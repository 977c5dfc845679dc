"""The rules of an agency's answers and of delivery to it: who may answer what, when, and how to retry.

Pure, no I/O.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from shared.domain_errors import Conflict
from shared.events import Location, OfferDetails, SafetyScreen

# What can happen to an assignment in notify: the agency's answers, reports and check-ins on scene,
# matching's withdrawal, and notify's own expiry at the deadline (notify alone decides whether an
# answer came in time).
INPUTS = (
    "accepted",
    "declined",
    "en_route",
    "on_scene",
    "cleared",
    "backup_requested",
    "check_in",
    "withdraw",
    "expire",
)
ANSWERS = ("accepted", "declined")
# state -> input -> next state: the only changes notify makes to an assignment.
TRANSITIONS: dict[str, dict[str, str]] = {
    "offered": {"accepted": "accepted", "declined": "declined", "withdraw": "withdrawn", "expire": "expired"},
    "accepted": {
        "en_route": "en_route",
        "on_scene": "on_scene",
        "cleared": "cleared",
        "backup_requested": "accepted",
        "withdraw": "withdrawn",
    },
    "en_route": {
        "on_scene": "on_scene",
        "cleared": "cleared",
        "backup_requested": "en_route",
        "withdraw": "withdrawn",
    },
    # A check-in starts the safety check-in timer again (services/notify/watch.py).
    "on_scene": {
        "cleared": "cleared",
        "backup_requested": "on_scene",
        "check_in": "on_scene",
        "withdraw": "withdrawn",
    },
    "declined": {},
    "cleared": {},
    "withdrawn": {},
    "expired": {},
}
# state -> inputs already behind it: answering or reporting the same again has no second effect.
REPEATS: dict[str, frozenset[str]] = {
    "offered": frozenset(),
    "accepted": frozenset({"accepted"}),
    "en_route": frozenset({"accepted", "en_route"}),
    "on_scene": frozenset({"accepted", "on_scene"}),
    "cleared": frozenset({"accepted", "cleared"}),
    "declined": frozenset({"declined"}),
    "withdrawn": frozenset({"withdraw"}),
    "expired": frozenset({"expire"}),
}
# States whose team still acts on the call, so a PSAP update's changes reach it.
HEARS_UPDATES = frozenset({"offered", "accepted", "en_route", "on_scene"})
DECLINE_REASONS = ("no_capacity", "out_of_area", "safety_concern", "skill_mismatch", "other")


@dataclass(frozen=True)
class Step:
    """An allowed input: the assignment's next state, and whether anything happens at all."""

    state: str
    changed: bool


@dataclass(frozen=True)
class Refusal:
    """An input the lifecycle does not allow: nothing is applied; the refusal is recorded."""

    code: str
    detail: str


# An accept of an offer of a parallel attempt after another team accepted the call first.
CALL_TAKEN = Refusal("call_taken", "another team offered the call at the same time accepted it first")


def step(state: str, event: str, *, past_deadline: bool = False) -> Step | Refusal:
    """The assignment after `event` in `state`, or why not (`past_deadline`: an answer came too late)."""
    if event not in INPUTS:
        raise ValueError(f"unknown input {event!r}")
    if event in REPEATS[state]:
        return Step(state, False)
    nxt = TRANSITIONS[state].get(event)
    if nxt is None:
        if state in ("withdrawn", "expired"):
            return Refusal(f"offer_{state}", f"the assignment was {state}")
        if event in ANSWERS:
            return Refusal("already_answered", f"the offer was already answered ({state})")
        return Refusal("invalid_transition", f"cannot apply {event} while the assignment is {state}")
    if event in ANSWERS and past_deadline:
        return Refusal("offer_expired", "the acknowledgement deadline has passed")
    return Step(nxt, True)


def refused(refusal: Refusal) -> Conflict:
    """What the agency is answered for a refused answer or report: a conflict named by its code."""
    return Conflict(refusal.detail, refusal.code)


def minimum(offer: OfferDetails) -> OfferDetails:
    """The offer with only the fields a team needs: anything else a producer added is dropped."""
    loc = offer.location
    return OfferDetails(
        # How sure the position is matters to a team looking for someone; a reference URL does not.
        location=Location(
            lat=loc.lat,
            lon=loc.lon,
            address=loc.address,
            coordinates_known=loc.coordinates_known,
            uncertainty_m=loc.uncertainty_m,
        ),
        presenting_problem=offer.presenting_problem,
        language=offer.language,
        safety=SafetyScreen(**{name: getattr(offer.safety, name) for name in SafetyScreen.model_fields}),
        callback_number=offer.callback_number,
        cautions=list(offer.cautions),
    )


WebhookVerdict = Literal["delivered", "gone", "retry"]


def webhook_verdict(status_code: int) -> WebhookVerdict:
    """What an HTTP answer means for a webhook message: taken, endpoint gone for good, or try again."""
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 410:
        return "gone"
    return "retry"


def backoff_s(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Delay before the next attempt: exponential, capped, with full jitter (`jitter` in [0, 1))."""
    return jitter * min(max_s, base_s * 2 ** max(0, attempt - 1))


def address_allowed(address: str, allow_private: bool) -> bool:
    """Whether a webhook may go to this IP: public ones only, unless the jurisdiction allows private."""
    ip = ipaddress.ip_address(address)
    if allow_private:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
