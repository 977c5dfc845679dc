"""What matching's use cases share from one event to the next: its knobs and the roster it keeps."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from services.matching.roster import Roster

SERVICE = "matching"


@dataclass(frozen=True)
class MatchingConfig:
    """The knobs of matching."""

    offer_timeout_s: int = 120
    # No offer is made with less than this left of the call's time to commit: it is handed back.
    offer_floor_s: float = 15.0
    speed_kmh: float = 40.0
    max_attempts: int = 3
    # How stale another replica's roster changes may be in a decision (this process's own are not).
    roster_refresh_s: float = 1.0
    # Which process made a decision (stored with it; two replicas may share the work).
    instance: str = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Matcher:
    """What matching's handlers share from one event to the next: its knobs and the roster it keeps."""

    config: MatchingConfig = field(default_factory=MatchingConfig)
    roster: Roster = field(init=False)

    def __post_init__(self) -> None:
        self.roster = Roster(self.config.roster_refresh_s)
