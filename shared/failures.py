"""Which failures are a dependency's outage or a lost race, and retrying the races."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError

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


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means a database or broker is unreachable for now (wait and retry, never give up)."""
    if isinstance(exc, _UNAVAILABLE_TYPES):
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
