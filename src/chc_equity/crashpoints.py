"""Named crash points, used only by the kill tests (``tests/test_ingest_kill.py``).

With ``CHC_EQUITY_CRASH_AT=<name>`` in the environment, the process sends itself ``SIGKILL`` when it
reaches ``crash_point(<name>)``: a real ``kill -9`` (no Python cleanup, no ``finally``, no DuckDB
checkpoint), placed exactly where a test wants it instead of by timing. Unset -- as in any real use --
``crash_point`` is one dictionary lookup. Every name is declared in :data:`POINTS` so the tests can
prove they cover each one.
"""

from __future__ import annotations

import os
import signal

ENV = "CHC_EQUITY_CRASH_AT"

POINTS: tuple[str, ...] = (
    # inside the load's transaction (nothing of the load may survive)
    "load:begun",
    "load:staged",
    "load:merged",
    "load:recorded",
    "load:views-built",
    # after the load committed (the refresh must be finished by the next run)
    "load:committed",
    "refresh:started",
    "measures:before-commit",  # inside run_measures' transaction: results of a period written, not committed
    "refresh:measures-done",
    "refresh:attributes-done",
    "aggregates:before-commit",  # inside precompute's transaction: agg_* rows written, not committed
    "refresh:aggregates-done",
    "refresh:all-done",
    "refresh:cleared",
)


def crash_point(name: str) -> None:
    """SIGKILL this process if ``$CHC_EQUITY_CRASH_AT`` names this point (tests only)."""
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
