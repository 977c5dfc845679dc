"""The simulated day: reproducible from its seed, busiest at noon, a realistic mix."""

import random
from collections import Counter

from shared.events import SafetyScreen
from tools.sim.scenario import (
    BEHAVIOURAL,
    DECLINE_REASONS,
    Options,
    agency_answer,
    as_eido,
    check_ins,
    diurnal_weight,
    plan_day,
)

AREA = (44.05, -123.09, 0.05)


def test_the_same_seed_gives_the_same_calls_and_another_seed_does_not():
    options = Options(calls_per_hour=200, hours=2)
    first = plan_day(7, options, ["a", "b"], AREA)
    assert first == plan_day(7, options, ["a", "b"], AREA)
    assert first != plan_day(8, options, ["a", "b"], AREA)


def test_noon_is_the_peak_and_midnight_the_trough():
    assert diurnal_weight(12 * 3600) > diurnal_weight(18 * 3600) > diurnal_weight(0)
    noon = plan_day(1, Options(calls_per_hour=300, hours=2, start_hour=11), ["a"], AREA)
    night = plan_day(1, Options(calls_per_hour=300, hours=2, start_hour=1), ["a"], AREA)
    assert len(noon.calls) > 2 * len(night.calls)


def test_the_mix_has_behavioural_calls_among_many_others():
    plan = plan_day(3, Options(calls_per_hour=600, hours=4, behavioural_share=0.3), ["a"], AREA)
    share = sum(c.behavioural for c in plan.calls) / len(plan.calls)
    assert 0.2 < share < 0.4
    assert all((c.body["incident_type"] in BEHAVIOURAL) == c.behavioural for c in plan.calls)
    assert len({c.body["external_id"] for c in plan.calls}) == len(plan.calls)
    assert [c.at for c in plan.calls] == sorted(c.at for c in plan.calls)


def test_a_simulated_eido_reads_back_as_the_same_call_and_an_update_raises_the_weapon_flag():
    from services.intake import eido

    plan = plan_day(5, Options(calls_per_hour=600, hours=1, eido_share=1.0), ["a"], AREA)
    call = plan.calls[0]
    read = eido.normalise(eido.EidoDocument.model_validate(as_eido(call, "2026-11-26T10:00:00Z")))
    assert read.incident_type == call.body["incident_type"]
    assert (read.location.lat, read.location.lon) == (
        call.body["location"]["lat"],
        call.body["location"]["lon"],
    )
    # The questions the simulator does not ask read back as unanswered, as a native call's would.
    assert read.safety == SafetyScreen.model_validate(call.body["safety"])
    assert read.language == call.body["language"] and read.origin == call.body["origin"]
    assert read.callback_number == call.body["callback_number"]
    assert not read.warnings
    later = eido.normalise(
        eido.EidoDocument.model_validate(as_eido(call, "2026-11-26T10:05:00Z", weapon="yes"))
    )
    assert later.external_id == read.external_id and later.safety.weapon == "yes"
    assert later.version is not None and read.version is not None and later.version > read.version


def test_a_team_on_scene_checks_in_twice_an_interval_and_one_that_lapses_misses_exactly_one():
    steady = check_ins(on_scene=100, cleared=400, every=100, lapse=False)
    assert steady == [150, 200, 250, 300, 350]
    lapsing = check_ins(on_scene=100, cleared=400, every=100, lapse=True)
    # Silent past the first due (200) but back before the second (its re-page answered in time).
    assert lapsing == [250, 300, 350]
    # Cleared before anything was due: no check-in at all.
    assert check_ins(on_scene=100, cleared=140, every=100, lapse=True) == []


def test_agencies_accept_decline_or_never_answer_in_their_shares_after_their_delays():
    options = Options(accept_share=0.6, decline_share=0.3)
    rng = random.Random(3)
    answers = [agency_answer(rng, options) for _ in range(4000)]
    shares = Counter(a.choice for a in answers)
    assert abs(shares["accept"] / 4000 - 0.6) < 0.03
    assert abs(shares["decline"] / 4000 - 0.3) < 0.03
    assert abs(shares["ignore"] / 4000 - 0.1) < 0.02
    for a in answers:
        if a.choice == "accept":
            assert options.accept_after_s[0] <= a.after_s <= options.accept_after_s[1]
            assert a.reason_code is None
        elif a.choice == "decline":
            assert options.decline_after_s[0] <= a.after_s <= options.decline_after_s[1]
            assert a.reason_code in DECLINE_REASONS
    # The same seed gives the same answers (a benchmark run can be repeated).
    again = random.Random(3)
    assert [agency_answer(again, options) for _ in range(4000)] == answers
