"""A call's civic address to a position, against the jurisdiction's address points.

Exact match first; then a scored fuzzy match of the street within the municipality; then the
nearest house number on the street found. The street catalogue (every street of every place,
a few thousand to tens of thousands of names) is held in memory per loaded address set, so the
fuzzy match costs no query; the points themselves stay in PostgreSQL, read by one indexed query
per call (see docs/geocoding.md for why, and what it costs at 500,000 points).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from services.intake import address_store
from services.intake.address_store import NearPoint
from services.intake.addresses import CivicAddress, Street

Method = Literal["exact", "fuzzy_street", "nearest_number"]
# Why no position was found, as codes (what oversight reads).
Failure = Literal[
    "no_address_points",
    "no_house_number",
    "no_municipality",
    "municipality_not_found",
    "street_not_found",
    "ambiguous_street",
    "address_unreadable",
]

# Streets whose name scores below this are not candidates at all (name_score, 0-1).
_NAME_CUTOFF = 0.6
_SHORTLIST_CUTOFF = 0.7
_DIGITS = re.compile(r"\d+")
# A municipality must be spelled nearly right to stand for another (a typo, not another town).
_PLACE_CUTOFF = 90.0
# How much a part said differently (both sides give it) or on one side only costs a street.
_PART_WEIGHTS = (("predir", 0.10), ("type", 0.10), ("posdir", 0.10), ("pretype", 0.05))
_TIE = 0.005
# The nearest number loses this much per house number of distance (60 numbers: 0.15), and
# this share when it is on the other side of the street (the other parity).
_PER_NUMBER = 1 / 400
_OTHER_SIDE = 0.95
_OTHER_SUFFIX = 0.97


@dataclass(frozen=True)
class Geocode:
    """Where a civic address is, how it was found and how sure that is (0-1); or why not."""

    method: Method | None
    score: float
    lat: float | None = None
    lon: float | None = None
    matched: str | None = None  # the address point matched, spelled out (for the PSAP's views)
    failure: Failure | None = None

    @property
    def found(self) -> bool:
        """Whether a position was found at all (it may still score below the threshold)."""
        return self.method is not None


def name_score(asked: str, known: str) -> float:
    """How alike two street names are (0-1): the mean of Jaro-Winkler (kind to a transposed or
    dropped letter: MIAN, MAIN) and the Indel ratio (hard on a longer name: HIGH, HIGHLAND); names
    whose numbers differ (10TH, 11TH) are other streets and lose half."""
    score = (JaroWinkler.normalized_similarity(asked, known) + fuzz.ratio(asked, known) / 100) / 2
    if _DIGITS.findall(asked) != _DIGITS.findall(known):
        score /= 2
    return score


def street_score(asked: Street, known: Street) -> float:
    """How well a known street answers the one asked for (0-1): the names' similarity, less a
    share for each part (directional, type) said differently, and a smaller one for a part only
    one side says."""
    name = name_score(asked.name, known.name)
    penalty = 0.0
    for part, weight in _PART_WEIGHTS:
        a, b = getattr(asked, part), getattr(known, part)
        if a != b:
            penalty += weight if a and b else weight / 4
    return max(0.0, round(name - penalty, 4))


def number_score(asked: int, suffix: str, found: int, found_suffix: str) -> float:
    """How well an address point's number answers the one asked for (0-1)."""
    if asked == found:
        return 1.0 if not suffix or suffix == found_suffix else _OTHER_SUFFIX
    score = max(0.0, 1 - abs(asked - found) * _PER_NUMBER)
    return score * (_OTHER_SIDE if (asked - found) % 2 else 1.0)


@dataclass(frozen=True)
class Place:
    """Where to look for a street: a municipality (or postal community), else a postcode."""

    municipality: str = ""
    postcode: str = ""


@dataclass
class Catalogue:
    """Every street of one address set, by place: what the fuzzy match runs over."""

    set_id: int
    streets: dict[Place, dict[str, Street]] = field(default_factory=dict)
    names: dict[Place, dict[str, list[Street]]] = field(default_factory=dict)
    name_lists: dict[Place, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, set_id: int, rows: Iterable[tuple[str, str, str, Street]]) -> Catalogue:
        """From (municipality, community, postcode, street) rows."""
        catalogue = cls(set_id)
        for municipality, community, postcode, street in rows:
            places = {Place(municipality=m) for m in (municipality, community) if m}
            if postcode:
                places.add(Place(postcode=postcode))
            for p in places:
                catalogue.streets.setdefault(p, {})[street.key] = street
                catalogue.names.setdefault(p, {}).setdefault(street.name, []).append(street)
        catalogue.name_lists = {p: list(names) for p, names in catalogue.names.items()}
        return catalogue

    def place(self, civic: CivicAddress) -> Place | Failure:
        """The place a civic address names, as the catalogue knows it, or why none."""
        if civic.municipality:
            asked = Place(municipality=civic.municipality)
            if asked in self.streets:
                return asked
            known = [p.municipality for p in self.streets if p.municipality]
            best = process.extractOne(
                civic.municipality, known, scorer=fuzz.ratio, score_cutoff=_PLACE_CUTOFF
            )
            if best is not None:
                return Place(municipality=best[0])
        if civic.postcode:
            by_code = Place(postcode=civic.postcode[:5])
            if by_code in self.streets:
                return by_code
        return "municipality_not_found" if civic.municipality or civic.postcode else "no_municipality"

    def candidates(self, place: Place, asked: Street, limit: int = 4) -> list[tuple[Street, float]]:
        """The place's streets that could be the one asked for, best first, with their scores:
        the exact street alone when there is one."""
        exact = self.streets[place].get(asked.key)
        if exact is not None:
            return [(exact, 1.0)]
        names = self.names[place]
        # Jaro-Winkler in rapidfuzz's C picks the few names worth scoring fully.
        near = process.extract(
            asked.name,
            self.name_lists[place],
            scorer=JaroWinkler.normalized_similarity,
            limit=2 * limit,
            score_cutoff=_SHORTLIST_CUTOFF,
        )
        scored = [
            (s, street_score(asked, s))
            for name, _, _ in near
            if name_score(asked.name, name) >= _NAME_CUTOFF
            for s in names[name]
        ]
        return sorted(scored, key=lambda pair: -pair[1])[:limit]


def best_point(civic: CivicAddress, points: Sequence[NearPoint]) -> tuple[NearPoint, float] | None:
    """The point of one street that best answers the civic address's number (and unit), with
    its number score."""
    assert civic.number is not None
    best: tuple[NearPoint, float] | None = None
    for point in points:
        score = number_score(civic.number, civic.number_suffix, point.number, point.number_suffix)
        # The asked-for unit first, then the building's own point (no unit), then any unit.
        rank = (score, point.unit == civic.unit, not point.unit)
        if best is None or rank > (best[1], best[0].unit == civic.unit, not best[0].unit):
            best = (point, score)
    return best


def spelled(civic_street: Street, point: NearPoint, place: Place) -> str:
    """An address point as the PSAP reads it."""
    number = f"{point.number}{' ' + point.number_suffix if point.number_suffix else ''}"
    unit = f" {point.unit}" if point.unit else ""
    where = place.municipality or place.postcode
    return f"{number} {civic_street.spelled_out()}{unit}, {where}"


def decide(
    civic: CivicAddress, place: Place, found: Sequence[tuple[Street, float, tuple[NearPoint, float] | None]]
) -> Geocode:
    """The geocode from each candidate street's score and its best point: the best combined
    score wins; two different streets scoring the same at the top cannot be told apart."""
    scored = [(s, street * number, point) for s, street, (point, number) in _with_points(found)]
    if not scored:
        return Geocode(None, 0.0, failure="street_not_found")
    scored.sort(key=lambda item: -item[1])
    street, score, point = scored[0]
    if len(scored) > 1 and scored[1][1] >= score - _TIE and scored[1][0].key != street.key:
        return Geocode(None, round(score, 4), failure="ambiguous_street")
    exact_street = street.key == civic.street.key
    if point.number != civic.number:
        method: Method = "nearest_number"
    else:
        method = "exact" if exact_street and score == 1.0 else "fuzzy_street"
    return Geocode(method, round(score, 4), point.lat, point.lon, spelled(street, point, place))


def _with_points(
    found: Sequence[tuple[Street, float, tuple[NearPoint, float] | None]],
) -> Iterable[tuple[Street, float, tuple[NearPoint, float]]]:
    for street, score, point in found:
        if point is not None:
            yield street, score, point


class Geocoder:
    """Geocodes against the active address set; its street catalogue is reloaded when the
    active set changes (a new `careroute load-addresses`), read once per set and process."""

    def __init__(self) -> None:
        self._catalogue: Catalogue | None = None
        self._lock = asyncio.Lock()

    async def catalogue(self, conn: asyncpg.Connection, set_id: int) -> Catalogue:
        """The street catalogue of address set `set_id`, read once."""
        current = self._catalogue
        if current is not None and current.set_id == set_id:
            return current
        async with self._lock:
            current = self._catalogue
            if current is None or current.set_id != set_id:
                current = Catalogue.build(set_id, await address_store.streets(conn, set_id))
                self._catalogue = current
            return current

    async def geocode(self, conn: asyncpg.Connection, set_id: int | None, civic: CivicAddress) -> Geocode:
        """Where `civic` is according to address set `set_id` (None: none is loaded)."""
        if set_id is None:
            return Geocode(None, 0.0, failure="no_address_points")
        if civic.number is None:
            return Geocode(None, 0.0, failure="no_house_number")
        catalogue = await self.catalogue(conn, set_id)
        place = catalogue.place(civic)
        if not isinstance(place, Place):
            return Geocode(None, 0.0, failure=place)
        candidates = catalogue.candidates(place, civic.street)
        near = await address_store.points_near(
            conn, set_id, [s.key for s, _ in candidates], civic.number, place.municipality, place.postcode
        )
        found = [(s, score, best_point(civic, near.get(s.key, []))) for s, score in candidates]
        return decide(civic, place, found)
