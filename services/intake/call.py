"""The one internal call model that both the native format and NENA EIDO normalise to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from services.intake.addresses import CivicAddress
from shared.events import Location, SafetyScreen

Origin = Literal["911", "988", "311"]


@dataclass(frozen=True)
class CallInput:
    """A call as intake understands it, whatever format the PSAP sent."""

    external_id: str
    incident_type: str
    location: Location
    safety: SafetyScreen
    origin: Origin = "911"
    language: str | None = None
    callback_number: str | None = None
    caller_name: str | None = None
    narrative: str | None = None
    consent_non_police: bool | None = None
    mpds_determinant: str | None = None
    # EIDO only: the document's version (lastUpdateTimeStamp), caution words and reading notes.
    version: datetime | None = None
    cautions: tuple[str, ...] = ()
    source_format: Literal["native", "eido"] = "native"
    warnings: tuple[str, ...] = field(default=())
    # Every timestamp the sender's clock wrote (where it was read, its value): checked against ours.
    stamps: tuple[tuple[str, datetime], ...] = ()
    # The civic address to geocode when the location has no coordinates (None: none was given).
    civic: CivicAddress | None = None
    # EIDO only: incident components that disagree with the one that decides (kept, not used), and
    # the agency identifiers the document names as its sender.
    other_incidents: tuple[dict[str, str | None], ...] = ()
    senders: tuple[str, ...] = ()
