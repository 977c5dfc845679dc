"""The stand-alone verifier: it finds every kind of tampering in an export, and it is not fooled by a
lying server (forged inclusion proofs, a forked or rolled-back checkpoint, a foreign signature)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.audit import merkle
from services.audit.domain import ChainRow
from services.audit.note import Checkpoint, Signer
from services.audit.verifier import VerifyError, check_server, verify_export
from services.cli import app as cli
from tests.unit.test_chain import build, rehash_from

SIGNER = Signer.from_seed("careroute.test/audit", bytes([9] * 32))
KEY = SIGNER.verifier()


def line(row: ChainRow) -> str:
    return json.dumps(
        {
            "seq": row.seq,
            "recorded_at": row.recorded_at,
            "event": row.event,
            "sealed": row.sealed.hex(),
            "prev_hash": row.prev_hash.hex(),
            "row_hash": row.row_hash.hex(),
        }
    )


def checkpoint(rows: list[ChainRow], size: int, signer: Signer = SIGNER) -> str:
    leaves = [merkle.leaf_hash(r.row_hash) for r in rows[:size]]
    return signer.sign(Checkpoint(signer.name, size, merkle.root(leaves)).text())


ROWS = build(12)
KEPT = [checkpoint(ROWS, 4), checkpoint(ROWS, 8)]


def test_an_honest_export_verifies():
    report = verify_export([line(r) for r in ROWS], KEPT, KEY)
    assert report.ok and report.verdict.checked == 12 and report.checkpoints == [4, 8]


@pytest.mark.parametrize(
    ("tamper", "first_bad", "why"),
    [
        (lambda rows: [*rows[:5], replace(rows[5], event={"x": 1}), *rows[6:]], 6, "content changed"),
        (lambda rows: rows[:2] + rows[3:], 3, "gap"),
        (lambda rows: [*rows[:6], rows[7], rows[6], *rows[8:]], 7, "gap or reorder"),
        (lambda rows: rows[:7], 8, "truncated below a checkpoint"),
        (lambda rows: rehash_from([replace(r, event={}) for r in rows], 0), 1, "fork"),
        (lambda rows: rehash_from([*rows[:6], replace(rows[6], event={}), *rows[7:]], 6), 5, "fork"),
    ],
    ids=["edit", "delete", "reorder", "truncate", "rewrite-all", "rewrite-tail"],
)
def test_tampered_exports_are_caught_at_the_first_bad_seq(tamper, first_bad, why):
    report = verify_export([line(r) for r in tamper(list(ROWS))], KEPT, KEY)
    assert not report.ok
    assert report.verdict.first_bad_seq == first_bad and why in (report.verdict.reason or "")


def test_two_kept_checkpoints_of_one_size_with_different_roots_are_a_fork():
    forked = rehash_from([replace(r, event={}) for r in ROWS], 0)
    with pytest.raises(VerifyError, match="fork"):
        verify_export([line(r) for r in ROWS], [*KEPT, checkpoint(forked, 8)], KEY)


def test_a_checkpoint_signed_by_another_key_is_refused():
    other = Signer.from_seed(SIGNER.name, bytes([1] * 32))
    with pytest.raises(VerifyError, match="no signature by the trusted key"):
        verify_export([line(r) for r in ROWS], [checkpoint(ROWS, 4, other)], KEY)


class LyingServer:
    """An audit service that serves a chosen tree and may forge its answers."""

    def __init__(
        self, rows: list[ChainRow], *, forge_inclusion: bool = False, signer: Signer = SIGNER
    ) -> None:
        self.leaves = [merkle.leaf_hash(r.row_hash) for r in rows]
        self.note = checkpoint(rows, len(rows), signer)
        self.forge_inclusion = forge_inclusion

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q: dict[str, Any] = dict(request.url.params)
        if request.url.path == "/v1/audit/checkpoint":
            return httpx.Response(200, text=self.note)
        if request.url.path == "/v1/audit/proofs/consistency":
            proof = merkle.consistency_proof(int(q["first"]), self.leaves[: int(q["second"])])
            return httpx.Response(200, json={"proof": [p.hex() for p in proof]})
        if request.url.path == "/v1/audit/proofs/inclusion":
            seq, size = int(q["seq"]), int(q["size"])
            proof = merkle.inclusion_proof(seq - 1, self.leaves[:size])
            if self.forge_inclusion:
                proof = [bytes(32)] * len(proof)
            return httpx.Response(200, json={"proof": [p.hex() for p in proof]})
        return httpx.Response(404, json={"detail": "not found", "code": "not_found"})


def ask(server: LyingServer, export: list[ChainRow] = ROWS) -> list[str]:
    with httpx.Client(transport=httpx.MockTransport(server), base_url="http://audit") as client:
        return check_server(client, KEY, KEPT, [line(r) for r in export], sample=12)


def test_an_honest_server_proves_everything():
    assert ask(LyingServer(ROWS)) == []


def test_forged_inclusion_proofs_are_rejected():
    problems = ask(LyingServer(ROWS, forge_inclusion=True))
    assert problems and all(p.startswith("forged inclusion proof") for p in problems)


def test_a_server_that_dropped_a_row_cannot_prove_the_exported_rows():
    shorter = rehash_from(ROWS[:3] + [replace(r, seq=r.seq - 1) for r in ROWS[4:]], 3)
    problems = ask(LyingServer(shorter))
    assert any(p.startswith("fork") for p in problems)


def test_a_forked_checkpoint_signed_with_the_real_key_is_caught_by_consistency():
    forked = rehash_from([*ROWS[:5], replace(ROWS[5], event={"rewritten": True}), *ROWS[6:]], 5)
    problems = ask(LyingServer(forked))
    assert "fork: the latest checkpoint is not consistent with the kept one of size 8" in problems
    assert any(p.startswith("forged inclusion proof: seq 6") for p in problems)


def test_a_rolled_back_server_and_a_foreign_signature_are_caught():
    assert any(p.startswith("rollback") for p in ask(LyingServer(ROWS[:6])))
    foreign = Signer.from_seed(SIGNER.name, bytes([2] * 32))
    assert ask(LyingServer(ROWS, signer=foreign))[0].startswith(
        "the server's latest checkpoint is not signed"
    )


def test_the_command_exits_1_on_tampering_and_0_when_intact(tmp_path: Path):
    (tmp_path / "key").write_text(KEY.encode())
    (tmp_path / "cp.txt").write_text(KEPT[1])
    (tmp_path / "good.jsonl").write_text("\n".join(line(r) for r in ROWS) + "\n")
    (tmp_path / "bad.jsonl").write_text("\n".join(line(r) for r in ROWS[:2] + ROWS[3:]) + "\n")
    base = ["verify", "--key", str(tmp_path / "key"), "--checkpoint", str(tmp_path / "cp.txt")]
    good = CliRunner().invoke(cli, [*base, "--export", str(tmp_path / "good.jsonl")])
    assert good.exit_code == 0 and "ok:" in good.output, good.output
    bad = CliRunner().invoke(cli, [*base, "--export", str(tmp_path / "bad.jsonl")])
    assert bad.exit_code == 1 and "TAMPERED at seq 3" in bad.output, bad.output
    (tmp_path / "junk.jsonl").write_text("not json\n")
    junk = CliRunner().invoke(cli, [*base, "--export", str(tmp_path / "junk.jsonl")])
    assert junk.exit_code == 2 and "export line 1" in junk.output
