"""What happens during a simulated day: when calls come, what they are, how agencies answer. Pure."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from tools.psap import EIDO_EXTENSION_ID, EIDO_EXTENSION_KEY, pidf_point

# Behavioural-health call types among the many others a 911 center takes (NENA-STA-021 registry).
BEHAVIOURAL = {"MNTL": 0.40, "WELFARE": 0.25, "SUICTHRT": 0.15, "EDP": 0.10, "INTOX": 0.10}
OTHER = {
    "MVA": 0.14,
    "THEFT": 0.12,
    "ALRBA": 0.10,
    "ASSAULT": 0.08,
    "DIST": 0.08,
    "ABDOM": 0.06,
    "BREATH": 0.06,
    "FALL": 0.06,
    "NOISE": 0.06,
    "PARK": 0.06,
    "TRESPASS": 0.06,
    "FIREST": 0.04,
    "ROBB": 0.04,
    "UNKN": 0.04,
}
LANGUAGES = {"en": 0.80, "es": 0.14, "vi": 0.03, "zh": 0.03}
QUESTIONS = ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")
SECONDS_PER_DAY = 86_400


def diurnal_weight(seconds_into_day: float) -> float:
    """Relative call rate at a time of day: a peak at noon, a trough at midnight (mean 1)."""
    return 1.0 + 0.7 * math.cos(2 * math.pi * (seconds_into_day - 43_200) / SECONDS_PER_DAY)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass(frozen=True)
class Options:
    """The knobs of a simulation."""

    calls_per_hour: float = 120.0
    behavioural_share: float = 0.3
    hours: float = 24.0
    start_hour: float = 0.0
    cancel_share: float = 0.03
    eido_share: float = 0.5
    update_share: float = 0.05
    accept_share: float = 0.80
    decline_share: float = 0.12  # the rest ignore the offer, so it times out
    # How long an agency's dispatcher takes to answer an offer: read it, reach the team, answer
    # (a decline, for want of a team, comes sooner). Inside the default two-minute time to commit.
    accept_after_s: tuple[float, float] = (15.0, 90.0)
    decline_after_s: tuple[float, float] = (5.0, 40.0)
    backup_share: float = 0.05  # accepted calls whose team asks for police backup
    review_decided_share: float = 0.6  # calls sent to review a call-taker decides (the rest wait)
    override_share: float = 0.03  # community calls a call-taker sends to police instead
    en_route_s: tuple[float, float] = (20.0, 120.0)
    on_scene_s: tuple[float, float] = (300.0, 1200.0)
    cleared_s: tuple[float, float] = (900.0, 3600.0)
    # Accepted calls whose team, on scene, lets one safety check-in lapse (checking in again later).
    check_in_lapse_share: float = 0.1


def check_ins(on_scene: float, cleared: float, every: float, lapse: bool, most: int = 200) -> list[float]:
    """When a team on scene from `on_scene` to `cleared` checks in, in simulated seconds: every half
    of the check-in interval `every`; a team that lets one lapse is silent for one and a half
    intervals first, so its first check-in runs out and the next answers the re-page."""
    times: list[float] = []
    t = on_scene + every / 2
    while t < cleared and len(times) < most:
        if not (lapse and t < on_scene + 1.5 * every):
            times.append(t)
        t += every / 2
    return times


@dataclass(frozen=True)
class PlannedCall:
    """One call the simulated 911 centers will send, at `at` simulated seconds from the start."""

    at: float
    psap: str
    body: dict[str, Any]
    cancel_after: float | None = None
    behavioural: bool = False
    eido: bool = False
    update_after: float | None = None


@dataclass
class Plan:
    """A day of calls, the same for the same seed."""

    calls: list[PlannedCall] = field(default_factory=list)


def plan_day(seed: int, options: Options, psaps: list[str], area: tuple[float, float, float]) -> Plan:
    """Poisson arrivals thinned by the diurnal curve; `area` is (lat, lon, radius in degrees)."""
    rng = random.Random(seed)
    peak = options.calls_per_hour / 3600 * 1.7
    t, n, plan = 0.0, 0, Plan()
    horizon = options.hours * 3600
    while True:
        t += rng.expovariate(peak)
        if t >= horizon:
            return plan
        time_of_day = (options.start_hour * 3600 + t) % SECONDS_PER_DAY
        if rng.random() > diurnal_weight(time_of_day) / 1.7:
            continue
        n += 1
        behavioural = rng.random() < options.behavioural_share
        incident_type = _pick(rng, BEHAVIOURAL if behavioural else OTHER)
        # Most behavioural calls screen clear; a few carry a weapon, violence or a medical need.
        safety = {q: rng.choices(["no", "yes", "unknown"], weights=[0.88, 0.06, 0.06])[0] for q in QUESTIONS}
        lat, lon, radius = area
        body: dict[str, Any] = {
            "external_id": f"SIM-{seed}-{n:06d}",
            "incident_type": incident_type,
            "origin": rng.choices(["911", "988", "311"], weights=[0.85, 0.10, 0.05])[0],
            "location": {
                "lat": round(lat + rng.uniform(-radius, radius), 5),
                "lon": round(lon + rng.uniform(-radius, radius), 5),
            },
            "safety": safety,
            "language": _pick(rng, LANGUAGES),
            "callback_number": f"+1541555{rng.randrange(10_000):04d}",
        }
        cancel = rng.uniform(30, 600) if rng.random() < options.cancel_share else None
        eido = rng.random() < options.eido_share
        # Some EIDO calls get a later version from the CAD: the caller now mentions a weapon.
        update = rng.uniform(60, 900) if eido and rng.random() < options.update_share else None
        plan.calls.append(PlannedCall(t, rng.choice(psaps), body, cancel, behavioural, eido, update))


DECLINE_REASONS = ("no_capacity", "out_of_area", "skill_mismatch")


@dataclass(frozen=True)
class Answer:
    """What an agency does with one offer: `accept`, `decline` (with a reason code) or `ignore`
    (it never answers, so the offer runs out), `after_s` simulated seconds after it arrived."""

    choice: str
    after_s: float = 0.0
    reason_code: str | None = None


def agency_answer(rng: random.Random, options: Options) -> Answer:
    """An agency's answer to one offer, drawn from the options' shares and delays."""
    roll = rng.random()
    if roll < options.accept_share:
        return Answer("accept", rng.uniform(*options.accept_after_s))
    if roll < options.accept_share + options.decline_share:
        return Answer("decline", rng.uniform(*options.decline_after_s), rng.choice(DECLINE_REASONS))
    return Answer("ignore")


_CAMEL = {"self_harm_imminent": "selfHarmImminent", "crime_in_progress": "crimeInProgress"}


def as_eido(
    call: PlannedCall,
    stamp: str,
    *,
    callback_number: str | None = None,
    cautions: tuple[str, ...] | list[str] = (),
    **screen_changes: str,
) -> dict[str, Any]:
    """The call as a NENA EIDO document with careroute's triage extension, at version `stamp`
    (a newer version may name another callback number and add cautions)."""
    body = call.body
    loc = body["location"]
    screen = {**body["safety"], **screen_changes}
    number = callback_number or body["callback_number"]
    caution = {"cautionComponent": [{"cautionTypeInternalText": c} for c in cautions]} if cautions else {}
    return {
        **caution,
        "$id": f"urn:emergency:uid:incidentid:{body['external_id']}:sim.careroute.example",
        "lastUpdateTimeStamp": stamp,
        "eidoVersion": "1.0",
        "eidoExtensionId": [EIDO_EXTENSION_ID],
        "incidentComponent": {"incidentTypeCommonRegistryText": body["incident_type"]},
        "locationComponent": [
            {
                "locationTypeDescriptionRegistryText": "CurrentIncident",
                "locationByValue": pidf_point(loc["lat"], loc["lon"]),
            }
        ],
        "callbackComponent": [{"callBackInformationUri": f"tel:{number}"}],
        EIDO_EXTENSION_KEY: {
            "safetyScreen": {_CAMEL.get(k, k): v for k, v in screen.items()},
            "preferredLanguage": body["language"],
            "origin": body["origin"],
        },
    }
