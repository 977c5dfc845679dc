"""The stand-alone verifier an oversight body runs: an export, its kept checkpoints, the public key.

It trusts nothing the server says: it re-walks the export's hash chain, rebuilds the Merkle tree and
compares it with every checkpoint whose signature verifies, and (optionally) asks the server for
consistency and inclusion proofs and checks each one against signed tree heads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx

from services.audit import domain, merkle
from services.audit.note import Checkpoint, NoteError, VerifierKey, open_checkpoint


class VerifyError(ValueError):
    """The input cannot be verified at all (malformed export, forged or forked checkpoints)."""


@dataclass
class Report:
    """What the verifier found."""

    verdict: domain.Verdict
    checkpoints: list[int]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing wrong anywhere."""
        return self.verdict.ok and not self.problems


def kept_heads(notes: Iterable[str], key: VerifierKey) -> dict[int, bytes]:
    """Size -> root of the kept checkpoints; VerifyError for a bad signature or two roots for one size."""
    heads: dict[int, bytes] = {}
    for n, note in enumerate(notes, 1):
        try:
            head = open_checkpoint(note, key)
        except NoteError as exc:
            raise VerifyError(f"checkpoint {n}: {exc}") from exc
        if heads.get(head.size, head.root) != head.root:
            raise VerifyError(f"fork: two signed checkpoints of size {head.size} with different roots")
        heads[head.size] = head.root
    return heads


def rows(lines: Iterable[str]) -> Iterator[domain.ChainRow]:
    """Chain rows from JSON Lines export records; VerifyError naming the first malformed line."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            yield domain.ChainRow(
                seq=int(r["seq"]),
                recorded_at=str(r["recorded_at"]),
                event=dict(r["event"]),
                sealed=bytes.fromhex(r["sealed"]),
                prev_hash=bytes.fromhex(r["prev_hash"]),
                row_hash=bytes.fromhex(r["row_hash"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise VerifyError(f"export line {n} is not a trail record: {exc!r}") from exc


def verify_export(lines: Iterable[str], notes: Iterable[str], key: VerifierKey) -> Report:
    """Walk an export from seq 1 against the kept checkpoints."""
    heads = kept_heads(notes, key)
    return Report(domain.walk(rows(lines), heads), sorted(heads))


def _proof(body: dict[str, object]) -> list[bytes]:
    values = body.get("proof")
    if not isinstance(values, list):
        raise VerifyError("the server's proof is not a list")
    try:
        return [bytes.fromhex(str(v)) for v in values]
    except ValueError as exc:
        raise VerifyError("the server's proof is not hex") from exc


def check_server(
    client: httpx.Client, key: VerifierKey, notes: Iterable[str], lines: Iterable[str], sample: int = 10
) -> list[str]:
    """Ask the server to prove its latest checkpoint extends the kept ones and holds sampled rows.

    Returns the problems found (empty when every proof checks out).
    """
    problems: list[str] = []
    heads = kept_heads(notes, key)
    answer = client.get("/v1/audit/checkpoint")
    answer.raise_for_status()
    try:
        latest: Checkpoint = open_checkpoint(answer.text, key)
    except NoteError as exc:
        return [f"the server's latest checkpoint is not signed by the key: {exc}"]
    for size, root in sorted(heads.items()):
        if size > latest.size:
            problems.append(f"rollback: the server's latest size {latest.size} is below a kept size {size}")
            continue
        if size == latest.size:
            if root != latest.root:
                problems.append(f"fork: the server's checkpoint of size {size} has another root")
            continue
        r = client.get("/v1/audit/proofs/consistency", params={"first": size, "second": latest.size})
        if r.status_code != 200 or not merkle.verify_consistency(
            size, latest.size, root, latest.root, _proof(r.json())
        ):
            problems.append(f"fork: the latest checkpoint is not consistent with the kept one of size {size}")
    exported = [row for row in rows(lines) if row.seq <= latest.size]
    step = max(1, len(exported) // max(1, sample))
    for row in exported[::step]:
        r = client.get("/v1/audit/proofs/inclusion", params={"seq": row.seq, "size": latest.size})
        leaf = merkle.leaf_hash(row.row_hash)
        if r.status_code != 200 or not merkle.verify_inclusion(
            row.seq - 1, latest.size, leaf, _proof(r.json()), latest.root
        ):
            problems.append(
                f"forged inclusion proof: seq {row.seq} is not proven in the tree of {latest.size}"
            )
    return problems
