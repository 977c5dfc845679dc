"""The audit hash chain: a clean chain verifies; each kind of tampering is named at its first bad row."""

import hashlib
import json
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import rfc8785

from services.audit import merkle
from services.audit.domain import (
    GENESIS,
    ChainRow,
    NotCanonical,
    canonical,
    redact,
    row_hash,
    seal,
    walk,
)
from services.audit.repository import EVENT_COLUMNS, NOT_CANONICAL, ChainHead, ChainItem, chain_rows


def build(n: int) -> list[ChainRow]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        env = {"id": f"e{seq}", "type": "calls.received.v1", "data": {"n": seq, "x": 0.1 * seq}}
        stamp = f"2026-11-26T12:00:{seq:02d}+00:00"
        sealed = seal(b"nonce", env)
        h = row_hash(prev, seq, stamp, env, sealed)
        rows.append(ChainRow(seq, stamp, env, sealed, prev, h))
        prev = h
    return rows


def rehash_from(rows: list[ChainRow], start: int) -> list[ChainRow]:
    """What a forger with write access does: recompute every hash from row `start` on."""
    out = rows[:start]
    prev = out[-1].row_hash if out else GENESIS
    for row in rows[start:]:
        h = row_hash(prev, row.seq, row.recorded_at, row.event, row.sealed)
        out.append(replace(row, prev_hash=prev, row_hash=h))
        prev = h
    return out


def heads(rows: list[ChainRow], *sizes: int) -> dict[int, bytes]:
    leaves = [merkle.leaf_hash(r.row_hash) for r in rows]
    return {s: merkle.root(leaves[:s]) for s in sizes}


def test_an_untouched_chain_verifies_with_its_checkpoints():
    rows = build(8)
    verdict = walk(rows, heads(rows, 3, 8), head_seq=8)
    assert (verdict.ok, verdict.checked) == (True, 8)


def test_changed_content_is_found_at_its_row():
    rows = build(5)
    rows[2] = replace(rows[2], event={**rows[2].event, "data": {"n": 99}})
    verdict = walk(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "content changed" in verdict.reason


def test_a_deleted_row_is_a_gap_at_the_missing_seq():
    rows = build(5)
    del rows[1]
    verdict = walk(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 2)
    assert verdict.reason is not None and "gap" in verdict.reason


def test_two_swapped_rows_are_a_reorder_at_the_first_of_them():
    rows = build(6)
    a, b = rows[2], rows[3]
    rows[2], rows[3] = replace(b, seq=3), replace(a, seq=4)
    verdict = walk(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "out of order" in verdict.reason


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link():
    rows = build(5)
    env = {**rows[1].event, "data": {"n": -1}}
    rows[1] = replace(
        rows[1], event=env, row_hash=row_hash(rows[1].prev_hash, 2, rows[1].recorded_at, env, rows[1].sealed)
    )
    verdict = walk(rows)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 3)
    assert verdict.reason is not None and "link broken" in verdict.reason


def test_a_consistent_rewrite_is_a_fork_against_the_kept_checkpoints():
    rows = build(8)
    kept = heads(rows, 2, 4, 8)
    forged = [*rows[:4], replace(rows[4], event={**rows[4].event, "data": {"n": 0}}), *rows[5:]]
    verdict = walk(rehash_from(forged, 4), kept)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 5)
    assert verdict.reason is not None and "fork" in verdict.reason
    everything = rehash_from([replace(r, event={**r.event, "data": {}}) for r in rows], 0)
    assert walk(everything).ok  # the chain alone cannot tell ...
    assert walk(everything, kept).first_bad_seq == 1  # ... the signed checkpoints can


def test_a_dropped_tail_is_truncation_below_a_checkpoint_or_the_head():
    rows = build(8)
    verdict = walk(rows[:6], heads(rows, 4, 8))
    assert (verdict.ok, verdict.first_bad_seq) == (False, 7)
    assert verdict.reason is not None and "truncated below a checkpoint" in verdict.reason
    assert walk(rows[:6], head_seq=8).first_bad_seq == 7


def test_key_order_does_not_change_the_hash():
    a = row_hash(GENESIS, 1, "t", {"a": 1, "b": {"c": 2, "d": 3}}, b"s")
    b = row_hash(GENESIS, 1, "t", {"b": {"d": 3, "c": 2}, "a": 1}, b"s")
    assert a == b


def test_oversight_view_is_an_allow_list_of_declared_fields():
    """Contact details, names, free text, anything a producer adds and undeclared fields are left
    out; positions are coarsened; an unknown event type shows no data at all."""
    env: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e1",
        "type": "assignments.offered.v1",
        "source": "matching",
        "subject": "c1",
        "time": "2026-12-01T00:00:00+00:00",
        "planted_header": "CANARY-H",
        "data": {
            "assignment_id": "a1",
            "call_id": "c1",
            "agency_id": "ag",
            "team_id": "t1",
            "attempt": 1,
            "deadline": "2026-12-01T00:02:00+00:00",
            "caller_name": "CANARY-N",
            "offer": {
                "location": {"lat": 44.050312, "lon": -123.088934, "address": "CANARY-A"},
                "presenting_problem": "CANARY-P",
                "language": "es",
                "safety": {"weapon": "no"},
                "callback_number": "CANARY-C",
            },
        },
    }
    shown = redact(env)
    assert "CANARY" not in json.dumps(shown)
    assert shown["data"]["offer"] == {
        "location": {"lat": 44.05, "lon": -123.09},
        "language": "es",
        "safety": {"weapon": "no"},
    }
    assert shown["data"]["attempt"] == 1 and shown["id"] == "e1"
    assert redact({**env, "type": "something.else.v1"})["data"] == {}
    assert env["data"]["caller_name"] == "CANARY-N"


def test_the_seal_changes_with_the_full_event_and_the_nonce():
    env = {"data": {"callback_number": "+1555"}}
    assert seal(b"a", env) != seal(b"b", env)
    assert seal(b"a", env) != seal(b"a", {"data": {"callback_number": "+1556"}})


# Floats at the edges of where Python's and ECMAScript's number forms differ.
EDGE_FLOATS = (0.0, -0.0, 1e16, 9999999999999998.0, 2.0**53, 1e21, 1e-4, 9.999999999999999e-05, 1e-7, 5e-324)


def test_the_fast_canonical_form_is_byte_for_byte_rfc8785():
    rng = random.Random(8785)

    def scalar(kind: int) -> Any:
        if kind == 0:
            return rng.choice([None, True, False])
        if kind == 1:
            return rng.choice([rng.randrange(-(2**53) + 1, 2**53), rng.randrange(-100, 100), 2**53 - 1])
        if kind == 2:
            return rng.choice(
                [
                    rng.uniform(-1e6, 1e6),
                    rng.uniform(-1, 1) * 10 ** rng.randrange(-8, 22),
                    44.05,
                    float(rng.randrange(-(10**6), 10**6)),
                    rng.choice(EDGE_FLOATS),
                ]
            )
        return "".join(
            rng.choice('e.0123456789aZ0 "\\\n\t\x01é€\u2028😀\x7f') for _ in range(rng.randrange(6))
        )

    def value(depth: int) -> Any:
        kind = rng.randrange(9 if depth < 3 else 6)
        if kind < 6:
            return scalar(min(kind, 3))
        if kind == 6:
            return {str(scalar(3)) + str(i): value(depth + 1) for i in range(rng.randrange(4))}
        if kind == 7:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        # A long list of one kind, as a capacity snapshot's columns are, or of mixed kinds.
        one = rng.randrange(5)
        return [scalar(one if one < 4 else rng.randrange(4)) for _ in range(rng.randrange(16, 40))]

    for _ in range(3000):
        v = value(0)
        assert canonical(v) == rfc8785.dumps(v), v


def test_long_columns_of_numbers_are_encoded_as_rfc8785_encodes_them():
    """A long list of one kind is checked as a whole: one odd number in it is enough."""
    for odd in (2.5e-7, 44.0, -0.0, 1e16, 0.1, 2.0**53 - 1):
        floats = [0.25 * n + 0.125 for n in range(30)] + [odd]
        assert canonical(floats) == rfc8785.dumps(floats), odd
    columns: list[list[Any]] = [[n * 7 for n in range(40)], [-(2**53) + 1, *range(20)], ["a1.0e-5"] * 20]
    for column in columns:
        assert canonical({"c": column}) == rfc8785.dumps({"c": column})


def test_a_double_reads_the_same_after_jsonb_wrote_it_as_an_integer():
    """jsonb writes 1e17 and 1.5e300 without an exponent; read back as integers, they hash the same."""
    for value in (1e17, 1.5e300, -2.5e20):
        # jsonb writes the shortest decimal in full; the double's exact binary value is another integer.
        for integer in (int(Decimal(repr(value))), int(value)):
            assert canonical({"u": integer}) == canonical({"u": value}) == rfc8785.dumps({"u": value})
            column = [integer, *range(20)]
            assert canonical(column) == rfc8785.dumps([value, *range(20)])


def test_values_no_double_holds_are_refused_by_name():
    for value in (
        10**30 + 7,
        2**53 + 1,
        float("inf"),
        float("nan"),
        {"deep": [3**40]},
        [*range(20), 2**53 + 1],
    ):
        try:
            canonical({"v": value})
        except NotCanonical:
            continue
        raise AssertionError(f"{value!r} was encoded")


def test_a_row_that_cannot_be_encoded_is_a_finding_with_its_seq_not_a_crash():
    rows = build(4)
    bad = replace(rows[2], event={**rows[2].event, "data": {"n": 10**30 + 7}})
    verdict = walk([*rows[:2], bad, rows[3]])
    assert not verdict.ok and verdict.first_bad_seq == 3
    assert verdict.reason is not None and verdict.reason.startswith("unverifiable")


def test_every_item_becomes_a_row_and_the_unencodable_ones_are_flagged():
    """An integer no double holds and a NUL: kept flagged, sealed over the received bytes."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    items: list[ChainItem] = []
    for n, data in enumerate(({"n": 1}, {"n": 10**30 + 7}, {"note": "a\u0000b"}, {"u": 1e17})):
        envelope = {
            "specversion": "1.0",
            "id": str(uuid.UUID(int=n + 1)),
            "type": "calls.received.v1",
            "source": "intake",
            "subject": f"c{n}",
            "time": at.isoformat(),
            "data": data,
        }
        items.append((envelope, at, b"nonce-%d" % n, json.dumps(envelope).encode()))
    head = ChainHead(0, GENESIS, [])
    rows, _ = chain_rows(head, items)
    flag, public, nonce, raw = (EVENT_COLUMNS.index(c) for c in ("flag", "public_event", "nonce", "raw"))
    assert [r[flag] for r in rows] == [None, NOT_CANONICAL, NOT_CANONICAL, None]
    assert json.loads(rows[1][public])["data"] == {} and json.loads(rows[1][public])["subject"] == "c1"
    assert rows[1][raw] == items[1][3] and rows[3][raw] is None
    seals = [
        hashlib.sha256(r[nonce] + r[raw]).digest() if r[flag] else seal(r[nonce], envelope)
        for r, (envelope, *_) in zip(rows, items, strict=True)
    ]
    chain = [
        ChainRow(
            r[0],
            r[EVENT_COLUMNS.index("recorded_at")].isoformat(),
            json.loads(r[public]),
            sealed,
            r[EVENT_COLUMNS.index("prev_hash")],
            r[EVENT_COLUMNS.index("row_hash")],
        )
        for r, sealed in zip(rows, seals, strict=True)
    ]
    assert walk(chain).ok and head.seq == 4
