"""The benchmark's CPU arithmetic: per call and at rest, with the system's total leaving out the
benchmark's own process (the load generator)."""

import threading
import time

from tools.bench.cpu import per_call_ms, percent_of_core, snapshot_with_switches, switches_per_call

BEFORE = {"intake": 1.0, "postgresql": 2.0, "broker": 3.0, "benchmark": 4.0}
AFTER = {"intake": 1.5, "postgresql": 2.25, "broker": 3.05, "benchmark": 9.0}


def test_cpu_per_call_sums_every_part_but_the_load_generator():
    used = per_call_ms(BEFORE, AFTER, calls=100)
    assert used == {"intake": 5.0, "postgresql": 2.5, "broker": 0.5, "benchmark": 50.0, "system": 8.0}


def test_cpu_at_rest_is_a_share_of_one_core():
    used = percent_of_core(BEFORE, AFTER, seconds=10)
    assert used["intake"] == 5.0 and used["broker"] == 0.5 and used["system"] == 8.0


def test_context_switches_are_counted_over_every_thread_per_call():
    # This process's threads: one that sleeps and wakes ten times switches ten times or more (it
    # is still alive when counted: a thread that ended takes its count with it).
    napped, done = threading.Event(), threading.Event()

    def nap() -> None:
        for _ in range(10):
            time.sleep(0.001)
        napped.set()
        done.wait()

    _, before = snapshot_with_switches({})
    worker = threading.Thread(target=nap)
    worker.start()
    napped.wait()
    _, after = snapshot_with_switches({})
    done.set()
    worker.join()
    assert after["benchmark"] - before["benchmark"] >= 10


def test_context_switches_per_call_sum_every_part_but_the_load_generator():
    used = switches_per_call({"intake": 10, "benchmark": 0}, {"intake": 35, "benchmark": 99}, calls=10)
    assert used == {"intake": 2.5, "benchmark": 9.9, "system": 2.5}
