"""The audit hash chain: a clean chain verifies; each kind of tampering is named."""

from dataclasses import replace

from services.audit.domain import GENESIS, ChainRow, redact, row_hash, verify


def build(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        env = {"id": f"e{seq}", "type": "calls.received.v1", "data": {"n": seq, "x": 0.1 * seq}}
        stamp = f"2026-11-26T12:00:{seq:02d}+00:00"
        h = row_hash(prev, seq, stamp, env)
        rows.append(ChainRow(seq, stamp, env, prev, h))
        prev = h
    return rows


def test_an_untouched_chain_verifies():
    assert verify(build(5), GENESIS, 1).ok


def test_changed_content_is_found_at_its_row():
    rows = build(5)
    rows[2] = replace(rows[2], envelope={**rows[2].envelope, "data": {"n": 99}})
    verdict = verify(rows, GENESIS, 1)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "content changed" in verdict.reason


def test_a_deleted_row_is_a_gap():
    rows = build(5)
    del rows[1]
    verdict = verify(rows, GENESIS, 1)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "gap" in verdict.reason


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link():
    rows = build(5)
    env = {**rows[1].envelope, "data": {"n": -1}}
    rows[1] = replace(
        rows[1], envelope=env, row_hash=row_hash(rows[1].prev_hash, 2, rows[1].recorded_at, env)
    )
    verdict = verify(rows, GENESIS, 1)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "link broken" in verdict.reason


def test_key_order_does_not_change_the_hash():
    a = row_hash(GENESIS, 1, "t", {"a": 1, "b": {"c": 2, "d": 3}})
    b = row_hash(GENESIS, 1, "t", {"b": {"d": 3, "c": 2}, "a": 1})
    assert a == b


def test_oversight_view_hides_callback_numbers():
    env = {"data": {"callback_number": "+1555", "offer": {"callback_number": "+1666", "language": "es"}}}
    shown = redact(env)
    assert shown["data"]["callback_number"] == "[redacted]"
    assert shown["data"]["offer"] == {"callback_number": "[redacted]", "language": "es"}
    assert env["data"]["callback_number"] == "+1555"
