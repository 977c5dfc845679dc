"""Which failures are a dependency's outage or a lost race, retrying the races, and backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)

T = TypeVar("T")

# SQLSTATE classes of a database that is away, starting, stopping or full: the caller did nothing
# wrong, and the same statement succeeds once it is back. 08: connection exception; 57: operator
# intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57014
# cancelled by the server going down); 53: insufficient resources (53300 too many connections).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "57", "53")
# 40001 serialization failure, 40P01 deadlock: the transaction lost a race and may simply run again.
_CONFLICT_SQLSTATES = ("40001", "40P01")

_UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
)


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a PostgreSQL error, or '' for anything else."""
    return str(getattr(exc, "sqlstate", "") or "") if isinstance(exc, asyncpg.PostgresError) else ""


# What asyncpg raises as an InterfaceError for a statement that is wrong, not for a connection:
# retried forever, it would hold its consumer on one record instead of reaching a dead letter.
_MISUSE_TYPES: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)
_MISUSE_MESSAGES = ("the server expects", "the number of query arguments")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means a database or broker is unreachable for now (wait and retry, never give up)."""
    if isinstance(exc, _MISUSE_TYPES) or (
        isinstance(exc, asyncpg.InterfaceError) and str(exc).startswith(_MISUSE_MESSAGES)
    ):
        return False
    if isinstance(exc, _UNAVAILABLE_TYPES):
        return True
    # The broker's own verdict: a leader moving, a coordinator loading, a node not ready yet.
    if isinstance(exc, KafkaError) and exc.retriable:
        return True
    return sqlstate(exc)[:2] in _UNAVAILABLE_SQLSTATE_CLASSES


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a deadlock or serialization failure: run the transaction again."""
    return sqlstate(exc) in _CONFLICT_SQLSTATES


def is_transient(exc: BaseException) -> bool:
    """An outage or a lost race: the same work succeeds later and must never be dead-lettered."""
    return is_unavailable(exc) or is_conflict(exc)


async def retry_conflicts(work: Callable[[], Awaitable[T]], *, attempts: int = 5, base_s: float = 0.02) -> T:
    """Run `work` (one whole transaction) again when it loses a deadlock or serialization race."""
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except asyncpg.PostgresError as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
        # Jitter, so the two transactions that deadlocked do not meet again in the same order.
        await asyncio.sleep(base_s * attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def backoff_s(attempt: int, *, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    """The wait before retry number `attempt` (from 1): doubling from `base_s`, at most `cap_s`,
    with jitter so processes that failed together do not all come back in the same instant."""
    return min(cap_s, base_s * 2 ** min(attempt - 1, 30)) * (0.5 + random.random() / 2)


async def wait_backoff(stop: asyncio.Event, attempt: int, *, base_s: float = 0.1, cap_s: float = 5.0) -> bool:
    """Wait `backoff_s(attempt)` unless `stop` is set first; whether to go on (False: stopping)."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=backoff_s(attempt, base_s=base_s, cap_s=cap_s))
    except TimeoutError:
        return True
    return False
