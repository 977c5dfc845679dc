"""The simulated day: reproducible from its seed, busiest at noon, a realistic mix."""

from sim.scenario import BEHAVIOURAL, Options, diurnal_weight, plan_day

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
