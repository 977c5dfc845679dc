"""The timers that watch an accepted assignment: which one runs in each of its states, when it runs
out, and how far a timer that ran out has gone (the agency re-paged, then its PSAP told). Pure.

The timers follow the assignment's one state machine (services/notify/domain.py): each state after
the accept runs one timer, a step into the next state replaces it, a check-in on scene starts the
check-in again, and a state that ends the assignment (cleared, withdrawn) runs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.notify.rules import Watch
from shared.events import Timer

# The state an assignment is in -> the timer that watches it there.
TIMER_OF_STATE: dict[str, Timer] = {"accepted": "en_route", "en_route": "on_scene", "on_scene": "check_in"}
# running: due at `due_at`; repaged: missed, the agency paged again and the PSAP told at `fire_at`;
# overdue: the PSAP was told, nothing more fires until the agency answers.
Stage = Literal["running", "repaged", "overdue"]
Escalation = Literal["agency_repaged", "psap_told"]


@dataclass(frozen=True)
class Running:
    """The one timer watching an assignment: which, when it runs out, its stage, when it fires next."""

    timer: Timer
    due_at: datetime
    stage: Stage
    fire_at: datetime | None


def allowed_min(timer: Timer, rules: Watch, eta_min: float | None) -> float:
    """Minutes a timer allows: the en route and check-in times, or the ETA and its margin."""
    if timer == "en_route":
        return rules.en_route_within_min
    if timer == "check_in":
        return rules.check_in_every_min
    return (rules.eta_unknown_min if eta_min is None else eta_min) + rules.on_scene_margin_min


def started(state: str, at: datetime, rules: Watch, eta_min: float | None = None) -> Running | None:
    """The timer an assignment entering `state` (or checking in on scene) at `at` runs, or None
    when no timer watches that state (an offer, or an assignment that is over)."""
    timer = TIMER_OF_STATE.get(state)
    if timer is None:
        return None
    due = at + timedelta(minutes=allowed_min(timer, rules, eta_min))
    return Running(timer, due, "running", due)


@dataclass(frozen=True)
class Miss:
    """What a timer that fired does: who hears of it, and the timer afterwards."""

    escalation: Escalation
    after: Running


def missed(running: Running, rules: Watch) -> Miss:
    """A timer fired: the first time its agency is paged again and the PSAP is told `psap_after_min`
    after the timer ran out unless the agency answers first; the second time the PSAP is told."""
    if running.stage == "running":
        grace = running.due_at + timedelta(minutes=rules.psap_after_min)
        return Miss("agency_repaged", Running(running.timer, running.due_at, "repaged", grace))
    if running.stage == "repaged":
        return Miss("psap_told", Running(running.timer, running.due_at, "overdue", None))
    raise ValueError("an overdue timer fires no more")
