"""What a PSAP update changes in an offer, and which of those changes its team must hear."""

from __future__ import annotations

from shared.events import OfferChange, OfferDetails


def updated_offer(before: OfferDetails, update: OfferDetails) -> OfferDetails:
    """The offer a team holds after an update: the update's place, problem and screen; its
    callback number and language where it names one; every caution so far, the new ones after."""
    cautions = list(dict.fromkeys([*before.cautions, *update.cautions]))
    return update.model_copy(
        update={
            "callback_number": update.callback_number or before.callback_number,
            "language": update.language or before.language,
            "cautions": cautions,
        }
    )


def offer_changes(before: OfferDetails, after: OfferDetails) -> list[OfferChange]:
    """What a team must hear of `after` that `before` did not tell it, in a fixed order."""
    changes: list[OfferChange] = []
    was, now = before.location, after.location
    if (was.lat, was.lon, was.address) != (now.lat, now.lon, now.address):
        changes.append("location")
    if after.callback_number != before.callback_number:
        changes.append("callback_number")
    if after.language != before.language:
        changes.append("language")
    if set(after.cautions) - set(before.cautions):
        changes.append("cautions")
    return changes
