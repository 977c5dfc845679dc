"""The rules of an agency's answers: who may answer what, and when. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime

from shared.errors import ApiError

# Which status report may follow which assignment state.
NEXT: dict[str, set[str]] = {
    "accepted": {"en_route", "on_scene", "cleared", "backup_requested"},
    "en_route": {"en_route", "on_scene", "cleared", "backup_requested"},
    "on_scene": {"on_scene", "cleared", "backup_requested"},
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
    if reported not in NEXT.get(current, set()):
        raise ApiError(
            409, "invalid_transition", f"cannot report {reported} while the assignment is {current}"
        )
    return current if reported == "backup_requested" else reported
