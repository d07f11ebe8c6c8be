"""Crash points for the kill-anywhere harness (bench/kill_sweep.py); inert unless its variables are set.

`TUNESMITH_KILL_AT=NAME:N` makes the process SIGKILL itself the N-th time it reaches `crash_point(NAME)`
(`*:N` counts every point). `TUNESMITH_CRASH_LOG=FILE` appends each point's name as it is reached, so
the harness can list where a stage writes. The points sit inside the writes a crash must not corrupt:
checkpoints, the prepared-data swap, atomic file writes, the final weights.
"""

from __future__ import annotations

import os
import signal

KILL_ENV = "TUNESMITH_KILL_AT"
LOG_ENV = "TUNESMITH_CRASH_LOG"
_reached: dict[str, int] = {}  # per process: how often each watched point was reached


def crash_point(name: str) -> None:
    log, spec = os.environ.get(LOG_ENV), os.environ.get(KILL_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(name + "\n")
    if not spec:
        return
    wanted, _, count = spec.rpartition(":")
    if wanted not in (name, "*"):
        return
    _reached[wanted] = _reached.get(wanted, 0) + 1
    if _reached[wanted] == int(count):
        os.kill(os.getpid(), signal.SIGKILL)
