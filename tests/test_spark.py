"""chc_equity.spark: the Spark run equals the embedded (DuckDB) run row for row -- on the issue's
20k-patient generated network (opt-in: CHC_EQUITY_SPARK_20K=1; CI runs the same test on 150 patients)
and on the official eCQM test patients --, survives a task that fails
mid-run, and is deterministic.

Cost (measured 2026-12-02 on the loaded 2-core VM): the 20k test alone took 382 CPU-s of its process
tree (960 s wall at load 5-23; a probe of its parts: Spark 109 + session 12, embedded reference 69,
generation 8.5 -- the gap is not explained yet); the rest of the file runs on a 150-patient network.

One SparkSession (local[2,4]: two cores, a task may fail up to 4 times) for the whole test session.
Skips with the reason when Java or PySpark is missing (.ci/run installs Debian's openjdk-17-jre-headless
and `make test` installs the `spark` extra).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from conftest import shared_dir

PERIOD = (date(2026, 1, 1), date(2026, 12, 31))


@pytest.fixture(scope="session")
def spark():
    if shutil.which("java") is None:
        pytest.skip("Java is not installed (apt-get install openjdk-17-jre-headless): Spark tests skipped")
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[spark]')")
    from chc_equity.spark.pipeline import session

    spark = session(
        "local[2,4]",
        shuffle_partitions=2,
        conf={"spark.ui.enabled": "false", "spark.default.parallelism": "2"},
    )
    yield spark
    spark.stop()


def _generated(root: Path, *, centers: int, patients: int) -> Path:
    """A generated network plus, in its first center, a later file that replaces a Patient (a newer
    lastUpdated: the winner rule across files) and a malformed line (a reject)."""
    import orjson

    from chc_equity.synth import generate, load_config

    generate(
        root,
        centers=centers,
        patients=patients,
        seed=19,
        period_end=PERIOD[1],
        cfg=load_config(None, disparities=True),
    )
    center = sorted(p for p in root.iterdir() if p.is_dir())[0]
    first = orjson.loads((center / "Patient.ndjson").read_bytes().splitlines()[0])
    first["address"] = [{"postalCode": "99999"}]
    first["meta"] = {**first.get("meta", {}), "lastUpdated": "2099-01-01T00:00:00Z"}
    (center / "zz-later.ndjson").write_bytes(orjson.dumps(first) + b"\n{not json\n")
    return root


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small network (3 centers x 50 patients) for the rerun and attach checks."""
    return _generated(tmp_path_factory.mktemp("spark-net"), centers=3, patients=150)


SIZES = {"150": (3, 150), "20k": (4, 20_000)}


@pytest.fixture(scope="module", params=sorted(SIZES))
def failing_network(request, network: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The network the failed-task run uses: the small one always; the issue's 20k-patient network
    (4 centers) when ``CHC_EQUITY_SPARK_20K=1``. That run costs ~380 CPU-s over the process tree, more
    than CI's whole remaining budget, so CI runs the same test on 150 patients and the 20k run is
    taken on the dev VM (figures and date in benchmarks/README.md, "Spark")."""
    centers, patients = SIZES[request.param]
    if patients == 150:
        return network, patients
    if os.environ.get("CHC_EQUITY_SPARK_20K") != "1":
        pytest.skip("20k Spark run (~380 CPU-s) is opt-in: set CHC_EQUITY_SPARK_20K=1")
    return _generated(tmp_path_factory.mktemp("spark-net-20k"), centers=centers, patients=patients), patients


def _tables() -> list[str]:
    from chc_equity.spark.tasks import all_tables

    return ["resources", "rejects", *all_tables()]


def _assert_identical(con, output: Path, tables: list[str]) -> None:
    from chc_equity.equity.stratify import EquityRow, EquitySummaryRow
    from chc_equity.spark.compare import differences, embedded_equity, read_rows
    from chc_equity.spark.pipeline import equity_dimensions

    diffs = {t: d for t in tables if (d := differences(con, t, output)) != (0, 0)}
    assert diffs == {}, f"(only in DuckDB, only in Spark) rows per table: {diffs}"
    rows, summaries = embedded_equity(con, equity_dimensions(), period_start=PERIOD[0], period_end=PERIOD[1])
    assert rows and read_rows(output, "equity", EquityRow) == rows
    assert read_rows(output, "equity_summary", EquitySummaryRow) == summaries


@pytest.fixture(scope="module")
def network_run(spark, network: Path, tmp_path_factory: pytest.TempPathFactory):
    """The small network through Spark (the run the rerun and attach checks start from)."""
    from chc_equity.spark.pipeline import resolve_inputs, run

    out = tmp_path_factory.mktemp("spark-out")
    inputs = resolve_inputs([str(network)])
    result = run(spark, inputs, period_start=PERIOD[0], period_end=PERIOD[1], output=str(out / "run1"))
    return inputs, out, result


def test_network_identical_to_duckdb_after_a_failed_task(
    spark, failing_network: tuple[Path, int], tmp_path: Path
) -> None:
    """The issue's must-show (on the 20k-patient network when opted in, see ``failing_network``):
    every table Spark writes (``resources``, ``rejects``, ``measure_results``, ``patient_attributes``,
    every flat table) and the equity tables equal the embedded (DuckDB) run's row for row -- with one
    compute task failing after it wrote part of its output, the later file's Patient winning and the
    malformed line rejected."""
    from chc_equity.spark.compare import embedded_run
    from chc_equity.spark.pipeline import resolve_inputs, run

    network, patients = failing_network
    marker = tmp_path / "failed-once"
    inputs = resolve_inputs([str(network)])
    result = run(
        spark,
        inputs,
        period_start=PERIOD[0],
        period_end=PERIOD[1],
        output=str(tmp_path / "run"),
        partitions=4,  # ~5,000 patients each: the fixed cost per partition is paid 4 times, not 200
        fail_once=str(marker),
    )
    assert marker.read_text().startswith("partition "), "the injected failure did not happen"
    con = embedded_run(inputs, period_start=PERIOD[0], period_end=PERIOD[1])
    try:
        assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == 1
        replaced = con.execute("SELECT count(*) FROM flat.patient WHERE postal_code = '99999'").fetchone()[0]
        assert replaced == 1  # the later file's Patient won in DuckDB ...
        assert result.rows["flat.patient"] == patients and result.rows["rejects"] == 1
        results = con.execute("SELECT count(*) FROM measure_results").fetchone()[0]
        assert results > patients and result.rows["measure_results"] == results
        _assert_identical(con, tmp_path / "run", _tables())  # ... and in Spark; every table equal
    finally:
        con.close()
    manifest = json.loads((tmp_path / "run" / "_manifest.json").read_text())
    assert [c["center"] for c in manifest["centers"]] == sorted(inputs) and manifest["partitions"] == 4
    assert not list(tmp_path.glob("run.staging-*")), "the staging folder was committed by rename"
    # The retried partition's files replaced the first attempt's: no temporary or duplicate file.
    assert not list((tmp_path / "run").rglob(".*.tmp"))
    assert len(list((tmp_path / "run" / "measure_results").glob("part-*.parquet"))) == 5  # 4 + global


def test_rerun_is_deterministic(spark, network_run) -> None:
    """The same input again over the previous output: the same files, byte for byte, for
    every table the partitions write; the same rows for the tables Spark's writer writes."""
    import duckdb

    from chc_equity.spark.pipeline import run

    inputs, out, _ = network_run
    first = {p.relative_to(out / "run1"): p.read_bytes() for p in (out / "run1").rglob("part-*.parquet")}
    shutil.copytree(out / "run1", out / "before")
    run(spark, inputs, period_start=PERIOD[0], period_end=PERIOD[1], output=str(out / "run1"))
    again = {p.relative_to(out / "run1"): p.read_bytes() for p in (out / "run1").rglob("part-*.parquet")}
    ours = {k for k in first if k.parts[0] not in ("resources", "rejects")}
    assert ours and {k: again.get(k) for k in ours} == {k: first[k] for k in ours}
    con = duckdb.connect()
    for table in ("resources", "rejects"):
        a, b = (f"SELECT * FROM read_parquet('{out / d / table}/*.parquet')" for d in ("before", "run1"))
        assert con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0] == 0
        assert con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0] == 0


@pytest.mark.shared
def test_official_ecqm_patients_identical_to_duckdb(spark, tmp_path: Path) -> None:
    """The official eCQM test patients, each measure's test folder one center (test cases that reuse an
    id meet the winner rule): measure results, patient attributes and equity tables equal."""
    from chc_equity.spark.compare import embedded_run
    from chc_equity.spark.pipeline import resolve_inputs, run

    tests = shared_dir("ecqm", "tests")
    specs = [f"{p.name.split('-')[0]}={p}" for p in sorted(tests.iterdir()) if p.is_dir()]
    inputs = resolve_inputs(specs)
    run(spark, inputs, period_start=PERIOD[0], period_end=PERIOD[1], output=str(tmp_path / "ecqm"))
    con = embedded_run(inputs, period_start=PERIOD[0], period_end=PERIOD[1])
    try:
        assert con.execute("SELECT count(DISTINCT measure) FROM measure_results").fetchone()[0] == 21
        assert con.execute("SELECT count(*) FROM measure_results WHERE numerator").fetchone()[0] > 0
        _assert_identical(con, tmp_path / "ecqm", ["measure_results", "patient_attributes", "flat.patient"])
    finally:
        con.close()


def test_attach_makes_a_warehouse_of_the_output(network_run, tmp_path: Path) -> None:
    """`chc-equity spark attach`: the output's tables in a warehouse, web aggregates computed, and the
    embedded equity stage on it answers what Spark wrote (patient_attributes is used, not rebuilt)."""
    from typer.testing import CliRunner

    from chc_equity.cli import _register, app
    from chc_equity.equity.attributes import built_for
    from chc_equity.equity.stratify import EquityRow, equity_tables
    from chc_equity.spark.compare import read_rows
    from chc_equity.warehouse import connect

    inputs, out, result = network_run
    _register("spark")
    warehouse = tmp_path / "w.duckdb"
    done = CliRunner().invoke(app, ["spark", "attach", str(out / "run1"), "--warehouse", str(warehouse)])
    assert done.exit_code == 0, done.output
    con = connect(warehouse, read_only=True)
    try:
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("resources", "measure_results", "flat.patient")
        }
        assert counts == {t: result.rows[t] for t in counts}
        assert (
            con.execute("SELECT count(DISTINCT center) FROM loads WHERE status = 'spark'").fetchone()[0] == 3
        )
        assert con.execute("SELECT count(*) FROM agg_measure").fetchone()[0] > 0
        assert built_for(con)[:2] == PERIOD
        rows, _ = equity_tables(con, None, ["race_ethnicity"], period_start=PERIOD[0], period_end=PERIOD[1])
    finally:
        con.close()
    spark_rows = [r for r in read_rows(out / "run1", "equity", EquityRow) if r.dimension == "race_ethnicity"]
    assert rows == spark_rows
