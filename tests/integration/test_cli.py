"""The `careroute` command as an operator uses it: infra up/status/down, load, run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.infra import free_port
from tools.system import wait_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CAREROUTE = str(Path(sys.executable).with_name("careroute"))


def careroute(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CAREROUTE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    return {
        **clean,
        "CAREROUTE_RUN_DIR": str(tmp_path / "run"),
        "CAREROUTE_PG_PORT": str(free_port()),
        "CAREROUTE_KAFKA_PORT": str(free_port()),
        "KAFKA_BROKER": "tansu",
        "INTAKE_PORT": str(free_port()),
    }


def test_infra_load_and_run_from_the_command_line(env: dict[str, str], tmp_path: Path):
    try:
        up = careroute(env, "infra", "up")
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{env['CAREROUTE_KAFKA_PORT']}" in up.stdout

        status = careroute(env, "infra", "status")
        assert status.returncode == 0 and "tansu" in status.stdout and "postgres" in status.stdout

        for _ in range(2):  # loading is idempotent
            loaded = careroute(env, "load", "examples/lane-valley.yaml")
            assert loaded.returncode == 0, loaded.stderr
            assert "3 PSAPs, 4 agencies, 12 teams" in loaded.stdout

        bad = tmp_path / "bad.yaml"
        example = (ROOT / "examples/lane-valley.yaml").read_text()
        bad.write_text(example.replace("timezone: America/Los_Angeles", "timezone: Nowhere/Land"))
        refused = careroute(env, "load", str(bad))
        assert refused.returncode == 2 and "unknown time zone" in refused.stderr
        missing = careroute(env, "load", str(tmp_path / "nope.yaml"))
        assert missing.returncode == 2 and "cannot read" in missing.stderr

        run = subprocess.Popen([CAREROUTE, "run", "intake"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
        try:

            def ended() -> str | None:
                return (
                    None if run.poll() is None else (run.stderr.read().decode() if run.stderr else "exited")
                )

            asyncio.run(
                wait_ready({"intake": f"http://127.0.0.1:{env['INTAKE_PORT']}"}, timeout_s=60, ended=ended)
            )
        finally:
            run.send_signal(signal.SIGTERM)
            assert run.wait(timeout=60) == 0
    finally:
        down = careroute(env, "infra", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert careroute(env, "infra", "status").stdout.strip() == ""


def test_a_taken_port_is_reported_at_once(env: dict[str, str]):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["CAREROUTE_PG_PORT"])))
        squatter.listen()
        started = time.monotonic()
        up = careroute(env, "infra", "up", timeout=30)
        elapsed = time.monotonic() - started
    careroute(env, "infra", "down")
    assert up.returncode == 1
    assert env["CAREROUTE_PG_PORT"] in up.stderr and "CAREROUTE_PG_PORT" in up.stderr
    assert elapsed < 10
