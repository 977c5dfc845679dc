"""Triage weighs matching's capacity snapshot: community only when a team covering the call can take it."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.intake.capacity import Capacity
from services.intake.domain import TriageFacts, carried_capacity, triage
from services.intake.rules import Triage
from services.matching.capacity import digest, snapshot
from services.matching.domain import TeamSnapshot
from services.matching.index import RosterIndex
from shared.events import Answer, Location, Route, SafetyScreen, TeamsCapacity

RULES = Triage(
    version="v-cap",
    eligible_types=["MNTL"],
    exclude={"weapon": "police"},
    unknown_means="eligible",
)
CLEAR = SafetyScreen(weapon=Answer.no)
AT = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
EUGENE = Location(lat=44.05, lon=-123.09)
SPRINGFIELD = Location(lat=44.046, lon=-122.98)  # about 9 km east
SQUARE = [(44.0, -123.2), (44.0, -123.0), (44.1, -123.0), (44.1, -123.2)]


def _snap(**teams: tuple[float, float, float]) -> TeamsCapacity:
    """A snapshot in which each named team (lat, lon, radius km) has one place."""
    return TeamsCapacity(
        as_of=AT - timedelta(seconds=5),
        every_s=30,
        teams_on_roster=10,
        team_ids=list(teams),
        places=[1] * len(teams),
        lat_e4=[round(t[0] * 1e4) for t in teams.values()],
        lon_e4=[round(t[1] * 1e4) for t in teams.values()],
        radius_m=[round(t[2] * 1000) for t in teams.values()],
    )


def _decide(capacity: Capacity | None, where: Location = EUGENE, at: datetime = AT, rules: Triage = RULES):
    return triage("MNTL", CLEAR, rules, TriageFacts(location=where, at=at, capacity=capacity))


def test_a_free_team_covering_the_call_keeps_it_community():
    decision = _decide(Capacity.of(_snap(near=(44.05, -123.09, 5))))
    assert decision.route == Route.community
    assert "no_community_capacity" not in [c.code for c in decision.codes]


def test_no_free_team_covering_the_call_routes_it_where_the_rules_say_and_names_why():
    # The only free team is 9 km away with a 5 km radius: it does not cover Eugene.
    capacity = Capacity.of(_snap(far=(44.046, -122.98, 5)))
    decision = _decide(capacity)
    assert decision.route == Route.review
    code = next(c for c in decision.codes if c.code == "no_community_capacity")
    assert code.params == {"route": "review"}
    assert any("can take a call now" in r for r in decision.reasons)
    assert "no_safety_exclusion" not in [c.code for c in decision.codes]
    # The same snapshot covers a call in Springfield.
    assert _decide(capacity, SPRINGFIELD).route == Route.community
    # A region may send such calls to police, or offer them regardless.
    assert _decide(capacity, rules=RULES.model_copy(update={"no_capacity": "police"})).route == Route.police
    assert _decide(capacity, rules=RULES.model_copy(update={"no_capacity": "community"})).route == (
        Route.community
    )


def test_a_polygon_team_covers_inside_its_polygon_only():
    snap = _snap(poly=(44.5, -124.0, 1)).model_copy(update={"areas": {"poly": SQUARE}})
    capacity = Capacity.of(snap)
    assert _decide(capacity).route == Route.community
    assert _decide(capacity, Location(lat=44.2, lon=-123.1)).route == Route.review


def test_unknown_capacity_is_not_no_capacity():
    far = Capacity.of(_snap(far=(44.046, -122.98, 5)))
    # No snapshot at all, or one older than its heartbeats allow (matching may be down).
    assert _decide(None).route == Route.community
    assert _decide(far, at=AT + timedelta(minutes=5)).route == Route.community
    # No position: triage already sends it to review for that, not for capacity.
    unlocated = Location(lat=0, lon=0, address="1 Main St", coordinates_known=False)
    decision = _decide(far, unlocated)
    assert "no_community_capacity" not in [c.code for c in decision.codes]


def test_a_call_kept_for_capacity_stays_so_on_its_updates_and_no_other_is_weighed_again():
    kept = _decide(Capacity.of(_snap()))
    assert kept.route == Route.review
    again = _decide(carried_capacity(kept, AT + timedelta(hours=2)), at=AT + timedelta(hours=2))
    assert again.route == Route.review
    community = _decide(None)
    assert carried_capacity(community, AT) is None


def _team(
    team_id: str, lat: float, status: str = "available", capacity: int = 1, held: int = 0
) -> TeamSnapshot:
    return TeamSnapshot(
        id=team_id,
        agency_id="a",
        lat=lat,
        lon=-123.09,
        radius_km=5,
        status=status,
        languages=("en",),
        shifts=(),
        capacity=capacity,
        held=held,
    )


def test_matchings_snapshot_lists_the_teams_that_can_take_one_more_call_with_their_places():
    index = RosterIndex(
        [
            _team("free", 44.05, capacity=2, held=1),
            _team("full", 44.06, capacity=1, held=1),
            _team("paused", 44.07, capacity=0),
            _team("busy", 44.08, status="on_scene", capacity=1, held=1),
            _team("off", 44.09, status="off_shift"),
        ]
    )
    snap = snapshot(index, AT, ZoneInfo("UTC"), 30)
    assert snap.team_ids == ["free"] and snap.places == [1] and snap.teams_on_roster == 5
    later = snapshot(index, AT + timedelta(seconds=10), ZoneInfo("UTC"), 30)
    assert digest(later) == digest(snap)  # the time alone is no change
    # What matching publishes, intake reads: the free team covers Eugene.
    assert Capacity.of(snap).free_covering(EUGENE.lat, EUGENE.lon) == 1
