"""The ingest screen: the per-resource Python screen vs what a vectorized SQL probe would cost.

    python benchmarks/screen.py                  # ../shared/synthea/ma-bundles
    python benchmarks/screen.py PATH...          # any files / directories

A SQL "probe" (each view compiled so that its run-time ``error()`` becomes a per-row problem) has to
evaluate every expression of every view over every resource, so running each view once over the
same resources is a lower bound of its cost (a probe adds the problem columns and its own
planning). This prints, in CPU seconds over the same resources: the Python screen alone
(``views.shape.builtin_screen``, on already-parsed resources, as ingest calls it), and each view of
the resource types present executed once, split into planning (EXPLAIN) and execution.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "synthea" / "ma-bundles"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from chc_equity.ingest import load
    from chc_equity.views.build import BUILTIN_VIEWS, _by_type, _group, _stage
    from chc_equity.views.shape import builtin_screen
    from chc_equity.warehouse import connect

    with tempfile.TemporaryDirectory(prefix="chc-screen-") as tmp:
        con = connect(Path(tmp) / "w.duckdb")
        load(con, args.paths or [DEFAULT_INPUT], "bench")
        rows = con.execute("SELECT type, CAST(resource AS VARCHAR) FROM resources").fetchall()
        parsed = [(t, orjson.loads(r)) for t, r in rows]
        screen = builtin_screen()
        c = _cpu()
        bad = sum(1 for t, obj in parsed if screen(t, obj) is not None)
        python_s = _cpu() - c
        present = {t for t, _ in rows}
        names = [n for n in sorted(BUILTIN_VIEWS) if BUILTIN_VIEWS[n]["resource"] in present]
        plan_s = run_s = 0.0
        for rtype, members in _by_type(names).items():
            group = _group(rtype, members)
            _stage(con, group, "TRUE")
            for name in members:
                sql = group.queries[name]
                c = _cpu()
                con.execute(f"EXPLAIN {sql}").fetchall()
                plan = _cpu() - c
                c = _cpu()
                con.execute(f"CREATE OR REPLACE TEMP TABLE probe AS {sql}")
                plan_s, run_s = plan_s + plan, run_s + max(0.0, _cpu() - c - plan)
        con.close()
    n = len(rows)
    print(
        f"{n:,} resources, {len(names)} views of {len(present)} types; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"python screen:        {python_s:6.2f} s CPU  ({python_s / n * 1e6:5.1f} us/resource, {bad} flagged)"
    )
    print(
        f"views run once (SQL): {run_s:6.2f} s CPU  ({run_s / n * 1e6:5.1f} us/resource) "
        f"+ planning {plan_s:.2f} s: the floor of a SQL probe"
    )


if __name__ == "__main__":
    main()
