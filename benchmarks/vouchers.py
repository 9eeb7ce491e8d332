"""Voucher program benchmark: a synthetic season through the app database (SQLite next to a temp
warehouse, or PostgreSQL when ``CHC_EQUITY_DATABASE_URL`` is set).

1. the season replayed as it would happen (setup, then per day: issue vouchers, void, import and
   adjudicate each weekly claims file, one transaction each);
2. the same season's lines as one big claims file into a fresh database (vouchers issued first):
   the import (one transaction) and the adjudication of every line, timed apart;
3. ``reconcile`` of the budget line.

Wall and CPU seconds of this process side by side (PostgreSQL's own CPU is not in the CPU column).

    PYTHONPATH=src .venv/bin/python benchmarks/vouchers.py [--households 300] [--seed 20] [--postgresql]

``--postgresql`` starts a throwaway cluster (tests/pgcluster.py, Debian's binaries) for the run.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path


def timed(name: str, fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    print(f"{name:<44} {time.perf_counter() - wall:8.2f} s wall {time.process_time() - cpu:8.2f} s CPU")
    return out


def fresh_db(folder: Path, name: str):
    from chc_equity.appdb import AppDB
    from chc_equity.appdb.engine import database_url

    url = os.environ.get("CHC_EQUITY_DATABASE_URL")
    if url:  # a fresh database per run: drop and recreate the schema's tables
        from chc_equity.appdb.models import Base

        db = AppDB(url)
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        db.dispose()
        return AppDB(url)
    return AppDB(database_url(folder / f"{name}.duckdb"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--postgresql", action="store_true", help="run on a throwaway PostgreSQL cluster")
    args = parser.parse_args()
    if args.postgresql:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from pgcluster import new_database, pg_cluster

        with pg_cluster() as admin:
            os.environ["CHC_EQUITY_DATABASE_URL"] = new_database(admin)
            run(args)
        return
    run(args)


def run(args: argparse.Namespace) -> None:

    from chc_equity.vouchers import season as synth
    from chc_equity.vouchers import store
    from chc_equity.vouchers.claims_file import read_claims, write_claims_csv
    from chc_equity.vouchers.setup import cents

    s = timed("generate season", synth.generate, seed=args.seed, households=args.households)
    files = list(s.files())
    print(f"{len(s.lines)} claim lines, {len(s.vouchers)} vouchers, {len(files)} weekly files, "
          f"backend {'postgresql' if os.environ.get('CHC_EQUITY_DATABASE_URL') else 'sqlite'}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = fresh_db(folder, "replay")
        timed("replay (issue, void, import + adjudicate)", synth.replay, db, s, folder / "season")
        with db.read() as session:
            problems = timed("reconcile", store.reconcile, session, synth.BUDGET_LINE, date(2026, 12, 31))
        assert problems == [], problems
        db.dispose()

        db = fresh_db(folder, "bulk")
        with db.write() as session:
            store.load_program(session, s.program, "bench")
            for v in s.vouchers:
                store.issue(session, voucher_id=v["id"], patient_id=v["patient_id"],
                            budget_line_id=synth.BUDGET_LINE, services=v["services"],
                            issued_on=date.fromisoformat(v["issued_on"]),
                            expires_on=date.fromisoformat(v["expires_on"]), max_cents=cents(v["max_amount"]),
                            by="bench")  # fmt: skip
        big = write_claims_csv(folder / "all.csv", sorted(s.lines, key=lambda x: (x.received_on, x.claim_no)))
        parsed = timed("read one file of every line", read_claims, big)

        def imp():
            with db.write() as session:
                return store.import_claims(session, parsed, "bench")

        result = timed("import (one transaction)", imp)

        def adjudicate():
            with db.write() as session:
                return store.adjudicate_open(session, "bench", date(2026, 12, 31))

        n = timed("adjudicate every line (one transaction)", adjudicate)
        print(f"{result.new_lines} lines imported, {n} adjudicated")
        db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
