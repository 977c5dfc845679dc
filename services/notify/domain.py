"""The rules of an agency's answers and of delivery to it: who may answer what, when, and how to retry.

Pure, no I/O.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

from shared.errors import ApiError
from shared.events import Location, OfferDetails, SafetyScreen

# Which status report may follow which assignment state.
NEXT: dict[str, set[str]] = {
    "accepted": {"en_route", "on_scene", "cleared", "backup_requested"},
    "en_route": {"en_route", "on_scene", "cleared", "backup_requested"},
    "on_scene": {"on_scene", "cleared", "backup_requested"},
    "cleared": {"cleared"},
}
DECLINE_REASONS = ("no_capacity", "out_of_area", "safety_concern", "skill_mismatch", "other")


def check_answer(status: str, deadline: datetime, now: datetime, answer: str) -> bool:
    """Whether an accept/decline should take effect; False means it already did (idempotent).

    Raises ApiError 409 with a clear code when the offer can no longer be answered that way.
    """
    if status == "offered":
        if now >= deadline:
            raise ApiError(409, "offer_expired", "the acknowledgement deadline has passed")
        return True
    if status in ("withdrawn", "expired"):
        raise ApiError(409, f"offer_{status}", f"the offer was {status}")
    if (answer == "accepted" and status in NEXT) or (answer == "declined" and status == "declined"):
        return False
    raise ApiError(409, "already_answered", f"the offer was already answered ({status})")


def check_status(current: str, reported: str) -> str:
    """The assignment state after a status report, or ApiError 409 when it breaks the lifecycle."""
    if current in ("withdrawn", "expired"):
        raise ApiError(409, f"offer_{current}", f"the assignment was {current}")
    if reported not in NEXT.get(current, set()):
        raise ApiError(
            409, "invalid_transition", f"cannot report {reported} while the assignment is {current}"
        )
    return current if reported == "backup_requested" else reported


def is_repeat(current: str, reported: str) -> bool:
    """A status already reported (not a backup request): answering twice has no second effect."""
    return reported == current and reported != "backup_requested"


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
