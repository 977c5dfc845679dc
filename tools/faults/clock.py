"""A skewed wall clock for one process: libfaketime (the PyPI package ships the shared library)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx


def library() -> Path:
    """The libfaketime shared library of the installed `libfaketime` package."""
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or spec.origin is None:
        raise RuntimeError("libfaketime is not installed: pip install --group dev (libfaketime==3.0.1)")
    lib = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not lib.is_file():
        raise RuntimeError(f"libfaketime's library is not where the package puts it: {lib}")
    return lib


def skewed_env(offset_s: int) -> dict[str, str]:
    """What a process needs in its environment for its wall clock to run `offset_s` off.

    The monotonic clock is left alone: timeouts and sleeps stay real; only what reads the time of
    day (event times, deadlines computed in Python, log stamps) is off.
    """
    return {
        "LD_PRELOAD": str(library()),
        "FAKETIME": f"{offset_s:+d}s",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def python_skew(env: dict[str, str]) -> float:
    """time.time() in a Python started with `env`, minus ours."""
    out = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return float(out.stdout.strip()) - time.time()


async def served_skew(base_url: str) -> float:
    """The Date header a running service answers with, minus our clock (to the second)."""
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"{base_url}/healthz")
    date = r.headers.get("date")
    if date is None:
        raise RuntimeError(f"{base_url} answers without a Date header")
    return parsedate_to_datetime(date).timestamp() - time.time()
