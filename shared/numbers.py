"""The numbers every value on the bus may hold: IEEE 754 doubles, as RFC 8785 encodes them.

A JSON number is accepted only when a double holds its value as written (0.1 is the double 0.1;
2**53 + 1, 1e400 and 0.10000000000000000001 are not), so what a service stores, publishes and
audit hashes is the number the client sent. NaN and Infinity are not JSON at all.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_SAFE_INTEGER = 2**53


class InexactNumber(ValueError):
    """A JSON number no double holds exactly, or a NaN or Infinity token."""


def _integer(token: str) -> int:
    value = int(token)
    if -_SAFE_INTEGER < value < _SAFE_INTEGER:
        return value
    try:
        as_float = float(value)
    except OverflowError:
        raise InexactNumber(f"the integer {token[:40]} is beyond what a double holds") from None
    if int(as_float) != value and Decimal(repr(as_float)) != value:
        raise InexactNumber(f"the integer {token[:40]} is not exactly a double")
    return value


def _float(token: str) -> float:
    value = float(token)
    if repr(value) == token:  # the usual case ("44.05"): the shortest form of a double, exact
        return value
    if value in (float("inf"), float("-inf")) or Decimal(repr(value)) != Decimal(token):
        raise InexactNumber(f"the number {token[:40]} is not exactly a double")
    return value


def _constant(token: str) -> Any:
    raise InexactNumber(f"{token} is not a JSON number")


def loads_exact(body: bytes | str) -> Any:
    """Parse JSON like json.loads, refusing any number a double does not hold exactly."""
    return json.loads(body, parse_int=_integer, parse_float=_float, parse_constant=_constant)


def check_exact(body: bytes) -> None:
    """Raise InexactNumber for the first inexact number of a JSON body (malformed JSON passes: the
    route's parser reports it)."""
    try:
        loads_exact(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return
