"""The hash chain: what each trail row commits to, redaction, and how a trail is checked. Pure, no I/O.

A row commits to the event's redacted (public) view and to a seal of the full event,
`SHA-256(nonce || canonical(full event))` with a random per-row nonce. Oversight bodies can then
re-check the whole chain from a redacted export, and nobody can test guesses of a phone number
against the seal without the nonce, which never leaves the audit service.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_args

import rfc8785
from pydantic.fields import FieldInfo

from services.audit import merkle
from shared.events import Disclosure, Payload
from shared.topics import model_for

GENESIS = bytes(32)
# Locations are coarsened to a grid of 0.01 degree (about 1 km).
GRID_DECIMALS = 2


# Where the standard library's sorted, compact JSON may differ from RFC 8785: its numbers (an
# integral float is "44.0", not "44"; Python writes an exponent below 1e-4 and from 1e16, ECMAScript
# below 1e-6 and from 1e21; an integer beyond 2**53 is read as the double it names) and its key
# order (by code point, not UTF-16 units, for characters outside the Basic Multilingual Plane; a
# lone surrogate cannot be encoded at all). Strings are escaped alike.
_ODD_CHAR = re.compile(r"[\ud800-\udfff\U00010000-\U0010ffff]")
_SAFE_INTEGER = 2**53
_FAST = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class NotCanonical(ValueError):
    """A value the canonical form cannot encode exactly (its numbers are IEEE doubles, RFC 8785)."""


def exact_double(n: int) -> float | None:
    """The double that the integer `n` names exactly, or None.

    PostgreSQL's jsonb writes a number without an exponent, so a double such as 1e17 comes back as
    the integer 100000000000000000; read as that double, it hashes as it did before it was stored.
    """
    try:
        as_float = float(n)
    except OverflowError:
        return None
    # Either the double's exact binary value or its shortest decimal form names it exactly.
    return as_float if int(as_float) == n or Decimal(repr(as_float)) == n else None


def _as_doubles(value: Any) -> Any:
    """`value` with every integer beyond the exact range of a double read as the double it names."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -_SAFE_INTEGER < value < _SAFE_INTEGER:
        as_float = exact_double(value)
        if as_float is None:
            raise NotCanonical(f"the integer {str(value)[:40]} is not exactly a double")
        return as_float
    if isinstance(value, dict):
        return {k: _as_doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_doubles(v) for v in value]
    return value


def _strict(value: Any) -> bytes:
    try:
        return rfc8785.dumps(_as_doubles(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise NotCanonical(str(exc)) from exc


# A list at least this long is checked by the kinds of its items first, at C speed (the capacity
# snapshot's columns hold thousands of integers).
_LONG_LIST = 16


def _only(items: list[Any] | tuple[Any, ...], kind: type) -> bool:
    return set(map(type, items)) == {kind}


def _items_agree(items: list[Any] | tuple[Any, ...], todo: list[Any]) -> bool:
    """False when a long list's numbers are seen to disagree; otherwise what is left to look at
    goes on `todo`."""
    if len(items) < _LONG_LIST:
        todo.extend(items)
    elif _only(items, int):
        return -_SAFE_INTEGER < min(items) <= max(items) < _SAFE_INTEGER
    elif _only(items, float):
        return (
            not any(map(float.is_integer, items))
            and 1e-4 <= min(map(abs, items)) <= max(map(abs, items)) < 1e16
        )
    elif not _only(items, str):
        todo.extend(items)
    return True


def _numbers_agree(value: Any) -> bool:
    """Whether every number in `value` (which the standard library could encode) is written by it
    as RFC 8785 writes it: a float that is not integral and lies in [1e-4, 1e16), an integer that
    a double holds exactly."""
    todo = [value]
    while todo:
        item = todo.pop()
        kind = type(item)
        # The exact JSON types first (json.loads gives nothing else), then their subclasses.
        if kind is str:
            continue
        if kind is dict:
            todo.extend(item.values())
        elif kind is list:
            if not _items_agree(item, todo):
                return False
        elif isinstance(item, float):
            if item.is_integer() or not 1e-4 <= abs(item) < 1e16:
                return False
        elif isinstance(item, int):
            if not -_SAFE_INTEGER < item < _SAFE_INTEGER:
                return False
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list | tuple) and not _items_agree(item, todo):
            return False
    return True


def _integral_as_int(value: Any) -> Any:
    """`value` with each integral float below 2**53 as the integer it is, which is how RFC 8785
    writes it (44.0 as 44, -0.0 as 0)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and -_SAFE_INTEGER < value < _SAFE_INTEGER else value
    if isinstance(value, dict):
        return {k: _integral_as_int(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) >= _LONG_LIST and (_only(value, int) or _only(value, str)):
            return value
        return [_integral_as_int(v) for v in value]
    return value


def canonical_json(value: Any) -> tuple[bytes, str | None]:
    """`canonical(value)`, with the same JSON as text when the standard library wrote it (so its
    numbers are written as `json.dumps` writes them), else None."""
    try:
        text = _FAST.encode(value)
    except (TypeError, ValueError, RecursionError):
        return _strict(value), None
    if not text.isascii() and _ODD_CHAR.search(text):
        return _strict(value), None
    if _numbers_agree(value):
        return text.encode(), text
    # Integral floats are the usual difference (a count or a whole degree sent as a float): written
    # as integers, the standard library's encoder writes the RFC 8785 form, far faster than rfc8785.
    integral = _integral_as_int(value)
    if _numbers_agree(integral):
        return _FAST.encode(integral).encode(), None
    return _strict(value), None


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON (the standard library's C encoder where it gives the same bytes);
    NotCanonical for a value it cannot encode exactly (NaN, infinity, an integer no double holds)."""
    return canonical_json(value)[0]


def seal(nonce: bytes, envelope: Mapping[str, Any]) -> bytes:
    """`SHA-256(nonce || canonical(full event))`: commits to the full event without revealing it."""
    return hashlib.sha256(nonce + canonical(envelope)).digest()


def canonical_row(seq: int, recorded_at: str, public: Mapping[str, Any], sealed: bytes) -> bytes:
    """The RFC 8785 canonical JSON of what a row commits to."""
    return _row_bytes(seq, canonical(recorded_at), canonical(public), sealed)


def _row_bytes(seq: int, recorded_at: bytes, public: bytes, sealed: bytes) -> bytes:
    # RFC 8785 of {"seq", "recorded_at", "event", "sealed"} from its members' canonical forms: the
    # keys in their sorted order, each value encoded on its own as it would be inside the object.
    return b'{"event":%b,"recorded_at":%b,"sealed":"%b","seq":%b}' % (
        public,
        recorded_at,
        sealed.hex().encode(),
        b"%d" % seq if -_SAFE_INTEGER < seq < _SAFE_INTEGER else canonical(seq),
    )


def row_hash(prev_hash: bytes, seq: int, recorded_at: str, public: Mapping[str, Any], sealed: bytes) -> bytes:
    """`H(prev_hash || canonical(row))` with SHA-256."""
    return hashlib.sha256(prev_hash + canonical_row(seq, recorded_at, public, sealed)).digest()


def row_hash_of(prev_hash: bytes, seq: int, recorded_at: bytes, public: bytes, sealed: bytes) -> bytes:
    """`row_hash` from the canonical bytes of the row's time and public view, encoded once by the caller."""
    return hashlib.sha256(prev_hash + _row_bytes(seq, recorded_at, public, sealed)).digest()


# The envelope attributes oversight sees: ids, type, producer, subject and times.
ENVELOPE_SHOWN = (
    "specversion",
    "id",
    "type",
    "source",
    "subject",
    "time",
    "datacontenttype",
    "correlationid",
    "causationid",
)


def _disclosure(info: FieldInfo) -> Disclosure | None:
    return next((m for m in info.metadata if isinstance(m, Disclosure)), None)


def _models_in(annotation: Any) -> list[type[Payload]]:
    """The payload models an annotation names (`Location`, `TriageDecision | None`, `list[ReasonCode]`)."""
    if isinstance(annotation, type) and issubclass(annotation, Payload):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


# One field oversight may read: its name, how it is shown, and the model of its value if nested.
_Rule = tuple[str, Disclosure, "type[Payload] | None"]


@functools.cache
def _rules(model: type[Payload]) -> tuple[_Rule, ...]:
    """The declared fields of a model, read from its annotations once (every event is redacted)."""
    rules: list[_Rule] = []
    for name, info in model.model_fields.items():
        how = _disclosure(info)
        if how is not None:
            nested = _models_in(info.annotation)
            rules.append((name, how, nested[0] if nested else None))
    return tuple(rules)


def _shown(nested: type[Payload] | None, value: Any) -> Any:
    if nested is None:
        return value
    if isinstance(value, list):
        return [_shown(nested, v) for v in value]
    if isinstance(value, dict):
        return disclosed(nested, value)
    return value


def _on_grid(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), GRID_DECIMALS)


def disclosed(model: type[Payload], data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `data` that `model` declares safe for oversight, nested models likewise;
    anything undeclared, or added by a producer, is left out."""
    out: dict[str, Any] = {}
    for name, how, nested in _rules(model):
        if name in data:
            value = data[name]
            if how is Disclosure.grid:
                out[name] = _on_grid(value)
            else:
                out[name] = value if nested is None else _shown(nested, value)
    return out


def redact(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """An oversight view of an event: the envelope's attributes and only the payload fields its
    model declares shown (positions coarsened to a grid cell); an unknown type shows no data."""
    try:
        model = model_for(str(envelope.get("type")))
    except KeyError:
        model = None
    data = envelope.get("data")
    view = {k: envelope[k] for k in ENVELOPE_SHOWN if k in envelope}
    return {**view, "data": disclosed(model, data) if model is not None and isinstance(data, dict) else {}}


@dataclass(frozen=True)
class ChainRow:
    """One row as a verifier reads it: its public view and seal, not the full event."""

    seq: int
    recorded_at: str
    event: dict[str, Any]
    sealed: bytes
    prev_hash: bytes
    row_hash: bytes


@dataclass(frozen=True)
class Verdict:
    """The result of walking a chain: ok, or the first bad row and why."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


class ChainWalker:
    """Walks rows in order, checking links, content and (from seq 1) the signed tree heads.

    `checkpoints` maps tree sizes to the root hashes of checkpoints whose signatures were
    already verified. Feed rows one by one (a trail may not fit in memory), then call finish().
    """

    def __init__(
        self,
        checkpoints: Mapping[int, bytes] | None = None,
        *,
        first_seq: int = 1,
        prev_hash: bytes = GENESIS,
    ) -> None:
        self._checkpoints = dict(checkpoints or {}) if first_seq == 1 else {}
        self._expected = first_seq
        self._prev = prev_hash
        self._frontier: list[bytes] = []
        self._size = 0
        self._good_size = 0
        self._suspect: Verdict | None = None
        self.checked = 0
        self.verdict: Verdict | None = None

    @property
    def last_seq(self) -> int:
        """The last sequence number accepted."""
        return self._expected - 1

    @property
    def tree_root(self) -> bytes:
        """The Merkle root of the rows walked so far (from seq 1)."""
        return merkle.frontier_root(self._frontier)

    def _fail(self, seq: int, reason: str) -> Verdict:
        self.verdict = Verdict(False, self.checked, seq, reason)
        return self.verdict

    def feed(self, row: ChainRow) -> Verdict | None:
        """Check one more row; returns the verdict once the first bad row is known."""
        if self.verdict is not None:
            return self.verdict
        if self._suspect is not None:
            # A broken link followed by a row that links to the last good one: rows out of order.
            reordered = row.prev_hash == self._prev
            suspect = self._suspect
            reason = "gap or reorder: rows are out of order" if reordered else suspect.reason or ""
            return self._fail(suspect.first_bad_seq or 0, reason)
        if row.seq != self._expected:
            missing = self._expected
            return self._fail(missing, f"gap or reorder: expected seq {missing}, found {row.seq}")
        if row.prev_hash != self._prev:
            self._suspect = Verdict(
                False, self.checked, row.seq, "link broken: prev_hash is not the row before"
            )
            return None
        try:
            expected = row_hash(self._prev, row.seq, row.recorded_at, row.event, row.sealed)
        except NotCanonical as exc:
            return self._fail(row.seq, f"unverifiable: the row cannot be encoded canonically ({exc})")
        if expected != row.row_hash:
            return self._fail(row.seq, "content changed: the row hash does not match its content")
        self._prev = row.row_hash
        self._expected += 1
        self.checked += 1
        if self._checkpoints:
            self._frontier = merkle.append(self._frontier, self._size, merkle.leaf_hash(row.row_hash))
            self._size += 1
            signed = self._checkpoints.get(self._size)
            if signed is not None:
                if merkle.frontier_root(self._frontier) != signed:
                    return self._fail(
                        self._good_size + 1,
                        f"fork: rows {self._good_size + 1}..{self._size} do not match the signed"
                        f" checkpoint of size {self._size}",
                    )
                self._good_size = self._size
        return None

    def finish(self, head_seq: int | None = None) -> Verdict:
        """The verdict after the last row; `head_seq` is where the trail claims to end."""
        if self.verdict is not None:
            return self.verdict
        if self._suspect is not None:
            return self._fail(self._suspect.first_bad_seq or 0, self._suspect.reason or "")
        if self._checkpoints and max(self._checkpoints) > self.last_seq:
            return self._fail(
                self.last_seq + 1,
                f"truncated below a checkpoint: signed size {max(self._checkpoints)}, "
                f"rows end at {self.last_seq}",
            )
        if head_seq is not None and head_seq > self.last_seq:
            return self._fail(
                self.last_seq + 1, f"truncated: rows end at {self.last_seq}, head is {head_seq}"
            )
        return Verdict(True, self.checked)


def walk(
    rows: Iterable[ChainRow], checkpoints: Mapping[int, bytes] | None = None, *, head_seq: int | None = None
) -> Verdict:
    """Walk a whole trail from seq 1 and return the verdict."""
    walker = ChainWalker(checkpoints)
    for row in rows:
        if walker.feed(row) is not None:
            break
    return walker.finish(head_seq)
