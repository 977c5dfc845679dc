"""The hash chain: how each trail row is hashed and how a chain is checked. Pure, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import rfc8785

GENESIS = bytes(32)


def canonical_row(seq: int, recorded_at: str, envelope: dict[str, Any]) -> bytes:
    """The RFC 8785 canonical JSON of what a row commits to."""
    return rfc8785.dumps({"seq": seq, "recorded_at": recorded_at, "event": envelope})


def row_hash(prev_hash: bytes, seq: int, recorded_at: str, envelope: dict[str, Any]) -> bytes:
    """`H(prev_hash || canonical(row))` with SHA-256."""
    return hashlib.sha256(prev_hash + canonical_row(seq, recorded_at, envelope)).digest()


@dataclass(frozen=True)
class ChainRow:
    """One stored row as the verifier reads it."""

    seq: int
    recorded_at: str
    envelope: dict[str, Any]
    prev_hash: bytes
    row_hash: bytes


@dataclass(frozen=True)
class Verdict:
    """The result of walking a chain: ok, or the first bad row and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def verify(rows: list[ChainRow], prev_hash: bytes, expected_first_seq: int) -> Verdict:
    """Walk rows in order from a known previous hash; report the first break."""
    expected_seq = expected_first_seq
    for n, row in enumerate(rows):
        if row.seq != expected_seq:
            return Verdict(False, n, row.seq, f"gap or reorder: expected seq {expected_seq}")
        if row.prev_hash != prev_hash:
            return Verdict(False, n, row.seq, "link broken: prev_hash does not match the row before")
        if row_hash(prev_hash, row.seq, row.recorded_at, row.envelope) != row.row_hash:
            return Verdict(False, n, row.seq, "content changed: row hash does not match its content")
        prev_hash = row.row_hash
        expected_seq += 1
    return Verdict(True, len(rows))


def redact(envelope: dict[str, Any]) -> dict[str, Any]:
    """An oversight view of an event: contact details hidden by default."""
    data = dict(envelope.get("data", {}))
    for key in ("callback_number",):
        if data.get(key):
            data[key] = "[redacted]"
    offer = data.get("offer") or data.get("details")
    if isinstance(offer, dict) and offer.get("callback_number"):
        nested = "offer" if "offer" in data else "details"
        data[nested] = {**offer, "callback_number": "[redacted]"}
    return {**envelope, "data": data}
