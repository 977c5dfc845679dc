"""shared.failures tells an outage or a lost race (wait and retry) from a failure that is real."""

import asyncio

import asyncpg
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from shared.consumer import PermanentError
from shared.failures import backoff_s, is_conflict, is_transient, is_unavailable, wait_backoff

E = asyncpg.exceptions

UNAVAILABLE = [
    E.CannotConnectNowError("the database system is starting up"),  # 57P03
    E.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
    E.CrashShutdownError("terminating connection because of crash of another server process"),  # 57P02
    E.TooManyConnectionsError("sorry, too many clients already"),  # 53300
    E.ConnectionDoesNotExistError("connection was closed in the middle of operation"),  # 08003
    E.ConnectionFailureError("connection failure"),  # 08006
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    E.InternalClientError("cannot switch to state 12"),
    TimeoutError(),  # a pool acquire or a command that timed out
    ConnectionRefusedError(111, "Connect call failed"),
    ConnectionResetError(104, "Connection reset by peer"),
    KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
    NodeNotReadyError("node 1 not ready"),
    RequestTimedOutError(),
    NotLeaderForPartitionError(),  # a broker's retriable verdict while a leader moves
]
CONFLICTS = [
    E.DeadlockDetectedError("deadlock detected"),  # 40P01
    E.SerializationError("could not serialize access due to concurrent update"),  # 40001
]
REAL = [
    E.UniqueViolationError("duplicate key value violates unique constraint"),
    E.UndefinedTableError('relation "x" does not exist'),
    E.InvalidTextRepresentationError("invalid input syntax for type uuid"),
    asyncpg.InterfaceError("the server expects 1 argument for this query, 2 were passed"),
    E.ClientConfigurationError("invalid connection option"),
    MessageSizeTooLargeError(),
    PermanentError("this event can never be applied"),
    ValueError("a bug"),
    KeyError("type"),
]


def _name(exc: BaseException) -> str:
    return type(exc).__name__


@pytest.mark.parametrize("exc", UNAVAILABLE, ids=_name)
def test_an_outage_is_unavailable_and_transient(exc: BaseException) -> None:
    assert is_unavailable(exc) and is_transient(exc) and not is_conflict(exc)


@pytest.mark.parametrize("exc", CONFLICTS, ids=_name)
def test_a_lost_race_is_a_conflict_and_transient(exc: BaseException) -> None:
    assert is_conflict(exc) and is_transient(exc) and not is_unavailable(exc)


@pytest.mark.parametrize("exc", REAL, ids=_name)
def test_a_real_failure_is_neither(exc: BaseException) -> None:
    assert not is_transient(exc) and not is_unavailable(exc) and not is_conflict(exc)


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    waits = [[backoff_s(attempt, base_s=0.1, cap_s=5.0) for attempt in range(1, 12)] for _ in range(50)]
    for run in waits:
        for attempt, wait in enumerate(run, start=1):
            ceiling = min(5.0, 0.1 * 2 ** (attempt - 1))
            assert ceiling / 2 <= wait <= ceiling
    assert len({run[3] for run in waits}) > 1  # jitter: processes that failed together spread out
    assert backoff_s(10_000) <= 5.0


async def test_a_backoff_ends_early_when_stopping() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await wait_backoff(stop, 30, base_s=10, cap_s=60) is False
    assert await wait_backoff(asyncio.Event(), 1, base_s=0.001) is True
