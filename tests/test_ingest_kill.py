"""`kill -9` in the middle of a load leaves the warehouse exactly as it was before that load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from chc_equity.ingest import load
from chc_equity.warehouse import connect

# Runs one load in a child process and prints MID once well over one staging batch is in DuckDB.
CHILD = """
import sys
from chc_equity.ingest import load
from chc_equity.warehouse import connect
seen = 0
def progress(nbytes, nresources):
    global seen
    seen += nresources
    if seen >= 60_000:
        print("MID", flush=True)
con = connect(sys.argv[1])
load(con, [sys.argv[2]], "c1", progress=progress)
print("DONE", flush=True)
"""


def _dump(con) -> list[list[tuple]]:
    return [
        con.execute(f"SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {t} ORDER BY ALL").fetchall()
        for t in ("resources", "loads", "rejects")
    ]


@pytest.mark.slow
def test_kill_9_mid_load_keeps_previous_state(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    small = tmp_path / "small" / "Patient.ndjson"
    small.parent.mkdir()
    small.write_bytes(b'{"resourceType":"Patient","id":"before","gender":"male"}\n{"bad": 1}\n')
    con = connect(db)
    load(con, [small], "c1")
    before = _dump(con)
    con.close()

    big = tmp_path / "Observation.ndjson"
    with big.open("wb") as fh:
        for i in range(400_000):
            fh.write(
                orjson.dumps(
                    {
                        "resourceType": "Observation",
                        "id": f"o{i}",
                        "status": "final",
                        "effectiveDateTime": "2024-01-02T03:04:05Z",
                    }
                )
                + b"\n"
            )
        fh.write(b'{"resourceType":"Patient","id":"before","gender":"female"}\n')
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(big)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "MID"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    con = connect(db)
    assert _dump(con) == before
    assert con.execute("SELECT count(*) FROM resources").fetchone() == (1,)
    con.close()
