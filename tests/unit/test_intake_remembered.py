"""What intake keeps of credentials: nothing while it cannot hear of changes, nothing a change
overtook, never an unknown token."""

from __future__ import annotations

from typing import Any

import pytest

from services.intake import repository
from services.intake.remembered import Remembered

ROW = repository.CredentialRow("valley-ecc", "psap", "valley-ecc", None, None, None)
NO_POOL: Any = None  # the reads below never reach one


class Reads:
    """A stand-in for the credential query: counts reads, may run `during` while one is in flight."""

    def __init__(self, row: repository.CredentialRow | None) -> None:
        self.row = row
        self.count = 0
        self.during: Any = None

    async def __call__(self, _pool: object, _digest: bytes) -> repository.CredentialRow | None:
        self.count += 1
        if self.during is not None:
            self.during()
        return self.row


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    reads = Reads(ROW)
    monkeypatch.setattr(repository, "credential", reads)
    return reads


def listening(remembered: Remembered) -> Remembered:
    remembered._live = True  # what `run` sets once its LISTEN is in place
    return remembered


async def test_nothing_is_kept_while_not_listening(reads: Reads):
    remembered = Remembered(NO_POOL)
    for _ in range(3):
        assert await remembered.credential(b"t") == ROW
    assert reads.count == 3


async def test_a_credential_is_read_once_while_listening(reads: Reads):
    remembered = listening(Remembered(NO_POOL))
    for _ in range(3):
        assert await remembered.credential(b"t") == ROW
    assert reads.count == 1
    remembered.forget()
    assert await remembered.credential(b"t") == ROW
    assert reads.count == 2


async def test_a_read_that_a_change_overtook_is_not_kept(reads: Reads):
    remembered = listening(Remembered(NO_POOL))
    reads.during = remembered.forget  # the NOTIFY came while the query was in flight
    await remembered.credential(b"t")
    reads.during = None
    await remembered.credential(b"t")
    await remembered.credential(b"t")
    assert reads.count == 2


async def test_an_unknown_token_is_read_every_time(reads: Reads):
    reads.row = None
    remembered = listening(Remembered(NO_POOL))
    for n in range(3):
        assert await remembered.credential(f"spray-{n}".encode()) is None
    assert await remembered.credential(b"spray-0") is None
    assert reads.count == 4
