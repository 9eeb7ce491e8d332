"""The Spark driver: list inputs, parse, choose each key's winner, route by patient, compute, commit.

Stages (docs/spark.md has the why):

1. **parse** (one task per few files): the ingest readers and checks -> resource and reject rows;
2. **winner per key** (shuffle by (center, type, id)): the loader's within-load rule -- greatest
   lastUpdated, a missing one below any real one, ties to the last seen (file order, then record
   order), exactly what ``ingest.store._WINNER_SEQS`` picks in DuckDB;
3. **route**: each winner's patient, read by the built-in views (``tasks.route``);
4. **compute** (shuffle by (center, patient)): per partition, the embedded warehouse runs views,
   measures and patient attributes on whole patients plus the broadcast resources of no patient;
5. **equity**: Spark SQL counts strata across partitions with the embedded stratifier's own query
   (``equity.stratify.stratum_counts_sql``); statistics and suppression run on the driver
   (``tables_from_counts``) -- a few thousand count rows, whatever the network's size;
6. **commit**: everything is written under ``<output>.staging-<run>``; the manifest last; then the
   staging folder is renamed to ``<output>`` (a previous output is moved aside first, then removed).

Each center is one load (``load_id`` = 1, 2, ... in center order), as ``chc-equity ingest`` of each
center in that order into an empty warehouse would number them.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from chc_equity.equity.attributes import DIMENSIONS
from chc_equity.equity.stratify import (
    EquityRow,
    EquitySummaryRow,
    counts_from_rows,
    tables_from_counts,
)
from chc_equity.spark import tasks

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

MANIFEST = "_manifest.json"
EQUITY_TABLES = ("equity", "equity_summary")
_WORK = "_work"  # intermediate stages inside the staging folder (see _checkpoint)
_MIN_MICROS = -9223372036854775807  # a missing lastUpdated ranks below every real one (store.py)


class SparkInputError(ValueError):
    """An --input that names nothing readable, or two inputs for one center."""


@dataclass
class RunResult:
    """What one run wrote (mirrors the manifest)."""

    output: str
    centers: list[str]
    files: int
    rows: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)


# --- the session ---------------------------------------------------------------------------------------
def session(
    master: str | None = None, *, shuffle_partitions: int | None = None, conf: Mapping[str, str] | None = None
) -> SparkSession:
    """A SparkSession for the pipeline: UTC, Arrow on, no console progress bar. ``master`` None keeps
    whatever spark-submit set. Local masters run the Python workers on this interpreter."""
    from pyspark.sql import SparkSession

    if master is None or master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("chc-equity")
    if master:
        builder = builder.master(master)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "false",  # fixed partition counts: a partition's files are stable
    }
    if master and master.startswith("local"):
        # A busy shared machine starves the JVM's heartbeat thread for minutes: do not drop the driver.
        settings["spark.network.timeout"] = "900s"
        settings["spark.executor.heartbeatInterval"] = "60s"
    if shuffle_partitions:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


# --- inputs --------------------------------------------------------------------------------------------
def resolve_inputs(specs: Sequence[str]) -> dict[str, list[str]]:
    """``--input`` values -> files per center, in the order the embedded loader reads them.

    ``CENTER=URI`` names a center's folder or file; a bare ``URI`` is a network folder whose
    subfolders are the centers (``chc-equity synth`` writes that layout). Local paths are listed by
    the loader's own ``find_inputs`` (same files, same order); other URIs through ``pyarrow.fs``,
    sorted by path parts as ``find_inputs`` sorts."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        center, sep, uri = spec.partition("=")
        pairs = [(center, uri)] if sep and "/" not in center and center else _centers_of(spec)
        for c, u in pairs:
            if c in out:
                raise SparkInputError(f"center {c!r} is given by two --input values")
            files = _list_files(u)
            if not files:
                raise SparkInputError(f"no input files for center {c!r} under {u}")
            out[c] = files
    if not out:
        raise SparkInputError("no --input given")
    return out


def _centers_of(root: str) -> list[tuple[str, str]]:
    if not tasks._is_remote(root):
        path = Path(tasks.local_name(root))
        if not path.is_dir():
            raise SparkInputError(f"not a folder of centers (give CENTER=PATH for one center): {root}")
        return [(p.name, str(p)) for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    from pyarrow import fs as pafs

    filesystem, base = pafs.FileSystem.from_uri(root)
    infos = filesystem.get_file_info(pafs.FileSelector(base))
    prefix = root[: len(root) - len(base)] if root.endswith(base) else root.split(base)[0]
    return sorted(
        (i.base_name, prefix + i.path)
        for i in infos
        if i.type == pafs.FileType.Directory and not i.base_name.startswith(".")
    )


def _list_files(uri: str) -> list[str]:
    from chc_equity.ingest.sources import INPUT_SUFFIXES, find_inputs

    if not tasks._is_remote(uri):
        return [str(p.resolve()) for p in find_inputs([tasks.local_name(uri)]).files]
    from pyarrow import fs as pafs

    filesystem, base = pafs.FileSystem.from_uri(uri)
    prefix = uri[: len(uri) - len(base)] if uri.endswith(base) else uri.split(base)[0]
    info = filesystem.get_file_info(base)
    if info.type == pafs.FileType.File:
        return [uri]
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True))
    files = [
        i.path
        for i in found
        if i.type == pafs.FileType.File
        and i.base_name.lower().endswith(INPUT_SUFFIXES)
        and not any(part.startswith(".") for part in Path(i.path).parts)
    ]
    return [prefix + p for p in sorted(files, key=lambda p: Path(p).parts)]


# --- the run ---------------------------------------------------------------------------------------------
def run(
    spark: SparkSession,
    inputs: Mapping[str, Sequence[str]],
    *,
    period_start: date,
    period_end: date,
    output: str,
    partitions: int | None = None,
    fail_once: str | None = None,
    on_stage: Any = None,
) -> RunResult:
    """The whole pipeline on ``inputs`` (center -> files); writes ``output`` (see module docstring).

    ``fail_once`` (a marker path; tests and ``$CHC_EQUITY_SPARK_FAIL_ONCE``) makes the first compute
    task raise after writing part of its output, to prove a retried task leaves exact output."""
    from pyspark.sql import functions as F

    if period_end < period_start:
        raise ValueError("period end is before period start")
    centers = sorted(inputs)
    out_root = output.rstrip("/")
    staging = f"{out_root}.staging-{uuid.uuid4().hex[:12]}"
    result = RunResult(output=out_root, centers=centers, files=0)
    clock = [time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        result.stage_seconds[name] = round(now - clock[0], 3)
        clock[0] = now
        if on_stage is not None:
            on_stage(name, result.stage_seconds[name])

    rows = [
        (c, load_id, i, uri) for load_id, c in enumerate(centers, start=1) for i, uri in enumerate(inputs[c])
    ]
    result.files = len(rows)
    parallelism = spark.sparkContext.defaultParallelism
    n_parts = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    files_df = spark.sparkContext.parallelize(rows, max(1, min(len(rows), 2 * parallelism))).toDF(
        "center string, load_id long, file_idx long, uri string"
    )
    sink = tasks.Sink(staging)
    try:
        parsed = _checkpoint(
            spark,
            files_df.mapInArrow(tasks.parse_files, _spark_schema(tasks.PARSED)),
            f"{staging}/{_WORK}/parsed",
        )
        rejects = (
            parsed.filter("kind = 'x'")
            .select(
                "load_id",
                "center",
                "source_file",
                "source_pos",
                F.col("type").alias("resource_type"),
                F.col("id").alias("resource_id"),
                "field",
                "reason",
                "detail",
                "raw",
                "file_idx",
                "rec_idx",
            )
            .repartition(1)
            .sortWithinPartitions("load_id", "file_idx", "rec_idx")
            .drop("file_idx", "rec_idx")
        )
        rejects.write.mode("overwrite").parquet(f"{staging}/rejects")
        stage("parse")

        order = F.struct(
            F.coalesce(F.unix_micros("last_updated"), F.lit(_MIN_MICROS)).alias("t"), "file_idx", "rec_idx"
        )
        payload = F.struct("last_updated", "source_file", "source_pos", "load_id", "resource")
        winners = (
            parsed.filter("kind = 'r'")
            .groupBy("center", "type", "id")
            .agg(F.max_by(payload, order).alias("w"))
            .select("center", "type", "id", "w.*")
            .select(*tasks.RESOURCES.names)
        )
        routed = _checkpoint(
            spark, winners.mapInArrow(tasks.route, _spark_schema(tasks.ROUTED)), f"{staging}/{_WORK}/routed"
        )
        (
            routed.drop("route")
            .sortWithinPartitions("center", "type", "id")
            .write.mode("overwrite")
            .parquet(f"{staging}/resources")
        )
        stage("winners+route")

        dimensions = equity_dimensions()
        broadcast = sorted(tasks.global_types())
        patient_types = sorted(tasks.routing_views())
        glob = _to_arrow(routed.filter(F.col("type").isin(broadcast)).drop("route"), tasks.RESOURCES)
        glob = glob.sort_by([("center", "ascending"), ("type", "ascending"), ("id", "ascending")])
        result.rows.update(tasks.compute_globals(glob, period_start, period_end, staging))
        sink_ipc = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink_ipc, glob.schema) as writer:
            writer.write_table(glob)
        shared = spark.sparkContext.broadcast(sink_ipc.getvalue().to_pybytes())
        stage("broadcast")

        compute = functools.partial(
            _compute_task,
            shared=shared,
            period_start=period_start,
            period_end=period_end,
            staging=staging,
            dimensions=dimensions,
            fail_once=fail_once,
        )
        key = F.coalesce(F.col("route"), F.concat_ws("/", "type", "id"))
        partial = (
            routed.filter(F.col("type").isin(patient_types))
            .repartition(n_parts, "center", key)
            .mapInArrow(compute, _spark_schema(tasks.PARTIAL))
        )
        # The only cross-partition step: Spark SQL sums the partitions' rows and stratum counts.
        partial.createOrReplaceTempView("spark_partial")
        summed = spark.sql(
            "SELECT kind, key, measure, group_id, stratum, sum(num) AS num, sum(den) AS den "
            "FROM spark_partial GROUP BY ALL HAVING kind = 'rows' OR sum(den) > 0"
        ).collect()
        counted: dict[str, list[tuple]] = {d: [] for d in dimensions}
        for row in summed:
            if row["kind"] == "rows":
                result.rows[row["key"]] = result.rows.get(row["key"], 0) + int(row["num"])
            else:
                counted[row["key"]].append(
                    (row["measure"], row["group_id"], row["stratum"], int(row["num"]), int(row["den"]))
                )
        stage("compute")

        equity, summary = equity_from_counts(counted)
        sink.write("equity", "part-00000.parquet", _rows_table(equity, EquityRow))
        sink.write("equity_summary", "part-00000.parquet", _rows_table(summary, EquitySummaryRow))
        result.rows["equity"], result.rows["equity_summary"] = len(equity), len(summary)
        stage("equity")

        result.rows["resources"] = spark.read.parquet(f"{staging}/resources").count()
        result.rows["rejects"] = spark.read.parquet(f"{staging}/rejects").count()
        manifest = {
            "period_start": period_start.isoformat(),
            "period_end": period_end.isoformat(),
            "centers": [
                {"center": c, "load_id": i, "files": list(inputs[c])} for i, c in enumerate(centers, start=1)
            ],
            "rows": dict(sorted(result.rows.items())),
            "partitions": n_parts,
            "spark": spark.version,
        }
        _remove(f"{staging}/{_WORK}")
        _write_text(sink, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        commit(staging, out_root)
        stage("commit")
    except BaseException:
        _remove(staging)
        raise
    return result


def _checkpoint(spark: SparkSession, df: DataFrame, uri: str) -> DataFrame:
    """Write ``df`` to Parquet at ``uri`` and read it back: a stage read twice is computed once.

    Why not ``persist()``: at 100k patients on ``local[2]`` with a 2 GB heap, the cached parse (whole
    resources as JSON text) and its blocks read back from disk (Java-deserialized, whole cached batches
    at a time) filled the heap next to the winner step's sort, and the run died with
    ``OutOfMemoryError``. Parquet is read back in small columnar batches, so the memory a run needs
    does not grow with the network; the files live under the staging folder and are removed before
    the commit (or with the staging folder when the run fails).
    """
    df.write.mode("overwrite").parquet(uri)
    return spark.read.parquet(uri)


def _compute_task(batches, *, shared, period_start, period_end, staging, dimensions, fail_once):
    return tasks.compute(
        batches,
        globals_ipc=shared.value,
        period_start=period_start,
        period_end=period_end,
        staging=staging,
        dimensions=dimensions,
        fail_once=fail_once,
    )


def _to_arrow(df: DataFrame, schema: pa.Schema) -> pa.Table:
    table = df.toArrow()
    return table.select(schema.names).cast(schema)


def equity_from_counts(
    counted: Mapping[str, Sequence[tuple]],
) -> tuple[list[EquityRow], list[EquitySummaryRow]]:
    """Summed stratum counts per dimension -> the equity rows and summaries of ``equity --by D`` for each
    dimension in turn (the embedded stratifier's statistics and suppression, on the driver)."""
    rows: list[EquityRow] = []
    summaries: list[EquitySummaryRow] = []
    for dimension in equity_dimensions():
        ordered = sorted(counted.get(dimension, []))  # the embedded query's ORDER BY ALL
        r, s = tables_from_counts(counts_from_rows(ordered, 1), [dimension])
        rows += r
        summaries += s
    return rows, summaries


def equity_dimensions() -> list[str]:
    """Every patient-attribute dimension (the equity tables hold each one-way stratification)."""
    return list(DIMENSIONS)


_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def _rows_table(rows: Sequence[Any], cls: type) -> pa.Table:
    """Dataclass rows -> an Arrow table typed from the annotations (``int | None`` -> int64)."""
    schema = pa.schema([(f.name, _ARROW[str(f.type).split("|")[0].strip()]) for f in fields(cls)])
    return pa.Table.from_pylist([{f: getattr(r, f) for f in schema.names} for r in rows], schema=schema)


# --- staging and commit -------------------------------------------------------------------------------
def _fs(uri: str):
    from pyarrow import fs as pafs

    if tasks._is_remote(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), tasks.local_name(uri)


def _write_text(sink: tasks.Sink, name: str, text: str) -> None:
    temp = f"{sink.root}/.{name}.tmp"
    with sink.fs.open_output_stream(temp) as out:
        out.write(text.encode())
    sink.fs.move(temp, f"{sink.root}/{name}")


def commit(staging: str, output: str) -> None:
    """Make the staged run the output by rename: a previous output is first moved aside (so a reader
    sees the old complete output or the new one), then removed."""
    from pyarrow import fs as pafs

    filesystem, src = _fs(staging)
    _, dst = _fs(output)
    old = None
    if filesystem.get_file_info(dst).type != pafs.FileType.NotFound:
        old = f"{dst}.old-{uuid.uuid4().hex[:12]}"
        filesystem.move(dst, old)
    filesystem.move(src, dst)
    if old is not None:
        filesystem.delete_dir(old)


def _remove(uri: str) -> None:
    from pyarrow import fs as pafs

    filesystem, path = _fs(uri)
    if filesystem.get_file_info(path).type == pafs.FileType.Directory:
        filesystem.delete_dir(path)


def read_manifest(output: str) -> dict:
    """The manifest of a committed output (raises FileNotFoundError when there is none)."""
    filesystem, path = _fs(output)
    with filesystem.open_input_stream(f"{path}/{MANIFEST}") as fh:
        return json.loads(fh.read())
