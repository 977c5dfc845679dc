"""The fault checker's rules over one call's trail: what counts as duplicated or out of order."""

from faults.checker import Verdict, check_trail

RECEIVED: tuple[str, dict[str, str]] = ("calls.received.v1", {})


def offered(a: str) -> tuple[str, dict[str, str]]:
    return ("assignments.offered.v1", {"assignment_id": a})


def responded(a: str, response: str = "accepted") -> tuple[str, dict[str, str]]:
    return ("assignments.responded.v1", {"assignment_id": a, "response": response})


def status(a: str, s: str) -> tuple[str, dict[str, str]]:
    return ("assignments.status_changed.v1", {"assignment_id": a, "status": s})


def judge(*events) -> Verdict:
    verdict = Verdict()
    check_trail("c", list(events), verdict)
    return verdict


def test_a_whole_lifecycle_and_a_decline_chain_are_clean():
    v = judge(
        RECEIVED,
        offered("a"),
        responded("a", "declined"),
        offered("b"),
        responded("b"),
        status("b", "en_route"),
        status("b", "on_scene"),
        status("b", "cleared"),
    )
    assert (v.duplicated, v.out_of_order) == (0, 0)


def test_an_expired_offer_frees_the_call_for_the_next_one():
    v = judge(RECEIVED, offered("a"), ("assignments.expired.v1", {"assignment_id": "a"}), offered("b"))
    assert (v.duplicated, v.out_of_order) == (0, 0)


def test_two_live_offers_and_a_repeated_offer_are_duplicates():
    assert judge(RECEIVED, offered("a"), offered("b")).duplicated == 1
    assert judge(RECEIVED, offered("a"), responded("a", "declined"), offered("a")).duplicated == 1
    assert (
        judge(
            RECEIVED, offered("a"), responded("a"), status("a", "en_route"), status("a", "en_route")
        ).duplicated
        == 1
    )


def test_lifecycle_violations_are_out_of_order():
    assert judge(offered("a"), RECEIVED).out_of_order == 1
    assert judge(RECEIVED, responded("a")).out_of_order == 1
    assert judge(RECEIVED, offered("a"), status("a", "on_scene")).out_of_order == 1
    assert (
        judge(
            RECEIVED, offered("a"), responded("a"), status("a", "on_scene"), status("a", "en_route")
        ).out_of_order
        == 1
    )
