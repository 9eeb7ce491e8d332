"""``--every 24h``: run a pull, sleep, repeat; a failed pull is reported and the loop goes on.

A deliberately simple loop (no scheduler library): one process, one pull at a time, so two pulls of the
same center can never overlap. Ctrl-C (or SIGTERM, turned into the same KeyboardInterrupt) ends it
cleanly: a pull interrupted mid-way rolls back like any failed pull. For machines where a resident
process is unwelcome, docs/pull.md gives the equivalent cron and systemd-timer lines.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_every(text: str) -> float:
    """'90s', '30m', '24h', '1d' -> seconds (at least 1)."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"--every: expected a number and a unit s/m/h/d (e.g. 24h), got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise ValueError("--every: must be at least 1s")
    return seconds


def _raise_interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def run_every(
    interval_s: float,
    once: Callable[[], None],
    report: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
) -> int:
    """Call ``once`` every ``interval_s`` (measured start to start) until interrupted; returns the
    number of runs. ``once`` raising an Exception is reported and does not stop the loop."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None
    runs = 0
    try:
        while max_runs is None or runs < max_runs:
            began = time.monotonic()
            try:
                once()
            except Exception as exc:  # reported by the caller's message; the next run may succeed
                report(f"pull failed: {exc}")
            runs += 1
            if max_runs is not None and runs >= max_runs:
                break
            wait = max(0.0, interval_s - (time.monotonic() - began))
            report(f"next pull in {wait / 3600:.1f} h" if wait >= 3600 else f"next pull in {wait:.0f} s")
            sleep(wait)
    except KeyboardInterrupt:
        report("stopped")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return runs
