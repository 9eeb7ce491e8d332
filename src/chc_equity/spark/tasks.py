"""What runs inside a Spark task: the embedded pipeline's own functions on one slice of the network.

Nothing here imports pyspark at module level (the functions are shipped to Python workers, and tests of
the pure parts run without a JVM). Every function takes and returns Arrow data:

- :func:`parse_files`: one task reads a few input files with the ingest readers (``read_file``, the
  loader's ``vet`` with the built-in views' screen) and returns resources and rejects as rows;
- :func:`route`: after the per-key winner is chosen, names each resource's patient with the built-in
  views themselves (``touched.patient_views``: the view column that is ``getReferenceKey(Patient)``);
- :func:`compute`: one partition = whole patients (all their resources) plus every resource that
  belongs to no patient (broadcast): an in-memory DuckDB warehouse, ``build_views``, ``run_measures``,
  ``build_patient_attributes``, and the results written as Parquet files named after the partition.

Why a task writes its own files: a partition's output is a pure function of its input (hash
partitioning by (center, patient) with a fixed partition count, sorted inside DuckDB), so a retried
or speculative attempt writes the same bytes to the same name; each file is written under a hidden
temporary name and moved into place, and the whole output is committed by renaming the staging
folder only after the job succeeded (``pipeline.commit``). Exactly-once without a second copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

# Columns of a parsed record (a resource or a reject); kind: "r" resource, "x" reject.
PARSED = pa.schema(
    [
        ("kind", pa.string()),
        ("center", pa.string()),
        ("load_id", pa.int64()),
        ("file_idx", pa.int64()),
        ("rec_idx", pa.int64()),
        ("type", pa.string()),
        ("id", pa.string()),
        ("last_updated", pa.timestamp("us", tz="UTC")),
        ("source_file", pa.string()),
        ("source_pos", pa.string()),
        ("resource", pa.string()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
# The warehouse's `resources` columns (warehouse.DDL), resource as JSON text.
RESOURCES = pa.schema(
    [
        ("center", pa.string()),
        ("type", pa.string()),
        ("id", pa.string()),
        ("last_updated", pa.timestamp("us", tz="UTC")),
        ("source_file", pa.string()),
        ("source_pos", pa.string()),
        ("load_id", pa.int64()),
        ("resource", pa.string()),
    ]
)
ROUTED = RESOURCES.append(pa.field("route", pa.string()))
# What a compute task returns: rows written per table (kind "rows": key = table, num = rows), and its
# partial stratum counts (kind "strata": key = dimension, measure, group, stratum, num, den).
PARTIAL = pa.schema(
    [
        ("kind", pa.string()),
        ("key", pa.string()),
        ("measure", pa.string()),
        ("group_id", pa.string()),
        ("stratum", pa.string()),
        ("num", pa.int64()),
        ("den", pa.int64()),
    ]
)
RESULT_TABLES = ("measure_results", "patient_attributes")
FAIL_ONCE_ENV = "CHC_EQUITY_SPARK_FAIL_ONCE"


# --- reading -----------------------------------------------------------------------------------------
def _is_remote(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return bool(scheme) and scheme != "file" and len(scheme) > 1  # "C:" is a drive, not a scheme


def local_name(uri: str) -> str:
    """A local file's path as the embedded loader records it (``str(Path.resolve())``), else the URI."""
    if _is_remote(uri):
        return uri
    path = urlparse(uri).path if uri.startswith("file:") else uri
    return str(Path(path).resolve())


@contextmanager
def _opened(uri: str) -> Iterator[Path]:
    """A local path holding the file: itself, or a streamed copy of a remote one (pyarrow.fs: s3, gs,
    hdfs ...) that keeps its name, so the readers recognise .ndjson / .gz as they do locally."""
    if not _is_remote(uri):
        yield Path(local_name(uri))
        return
    from pyarrow import fs as pafs

    filesystem, path = pafs.FileSystem.from_uri(uri)
    folder = tempfile.mkdtemp(prefix="chc-spark-")
    local = Path(folder) / Path(path).name
    try:
        with filesystem.open_input_stream(path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 << 20)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parse_files(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Input rows (center, load_id, file_idx, uri) -> every Resource / Reject of those files, in file
    order, through the loader's own checks (size limit, the built-in views' shape screen)."""
    from chc_equity.ingest.loader import vet
    from chc_equity.ingest.records import Resource
    from chc_equity.ingest.sources import DEFAULT_MAX_RECORD_BYTES, read_file
    from chc_equity.views.shape import builtin_screen

    screen = builtin_screen()
    for batch in batches:
        for row in batch.to_pylist():
            name = local_name(row["uri"])
            out: dict[str, list] = {n: [] for n in PARSED.names}
            with _opened(row["uri"]) as path:
                for rec_idx, read in enumerate(read_file(path, None, DEFAULT_MAX_RECORD_BYTES)):
                    item = vet(read, screen, DEFAULT_MAX_RECORD_BYTES) if isinstance(read, Resource) else read
                    is_resource = isinstance(item, Resource)
                    values = {
                        "kind": "r" if is_resource else "x",
                        "center": row["center"],
                        "load_id": row["load_id"],
                        "file_idx": row["file_idx"],
                        "rec_idx": rec_idx,
                        "source_file": name,
                        "source_pos": item.pos,
                    }
                    if is_resource:
                        values |= {
                            "type": item.type,
                            "id": item.id,
                            "last_updated": item.last_updated,
                            "resource": item.json.decode(),
                        }
                    else:
                        values |= {
                            "type": item.resource_type,
                            "id": item.resource_id,
                            "field": item.field,
                            "reason": item.reason,
                            "detail": item.detail,
                            "raw": item.raw,
                        }
                    for n in PARSED.names:
                        out[n].append(values.get(n))
                    if len(out["kind"]) >= 5000:
                        yield _batch(out, PARSED)
                        out = {n: [] for n in PARSED.names}
            if out["kind"]:
                yield _batch(out, PARSED)


def _batch(columns: dict[str, list], schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for f in schema:
        values = columns[f.name]
        if pa.types.is_timestamp(f.type):
            arrays.append(pa.array(values, pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --- the embedded warehouse inside a task ------------------------------------------------------------
def _warehouse(threads: int = 1) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the shared schema; one thread, because Spark runs the tasks side by
    side (its cores are the parallelism)."""
    from chc_equity.warehouse import connect_memory

    con = connect_memory()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _insert_resources(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Resources (the warehouse's columns, JSON as text) into ``resources``."""
    con.register("_spark_rows", table)
    try:
        con.execute(
            "INSERT INTO resources SELECT center, type, id, last_updated, source_file, source_pos, "
            "load_id, CAST(resource AS JSON) FROM _spark_rows"
        )
    finally:
        con.unregister("_spark_rows")


def routing_views() -> dict[str, tuple[str, str, str]]:
    """Resource type -> (view, key column, patient column): the first view of the type that names each
    row's resource and its patient (``touched.patient_views``, the rule the incremental refresh uses)."""
    from chc_equity.touched import patient_views

    return {t: (vs[0].name, vs[0].key, vs[0].patient) for t, vs in patient_views().items() if vs}


def global_types() -> frozenset[str]:
    """Types some view reads whose rows belong to no patient: broadcast to every partition."""
    from chc_equity.touched import global_types as types

    return types()


def route(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Winning resources -> the same rows plus ``route``: their patient's id per the built-in views
    (NULL for a type that names none, or a resource whose view row names no patient)."""
    from chc_equity.views.build import build_views

    views = routing_views()
    for batch in batches:
        table = pa.Table.from_batches([batch]).select(RESOURCES.names)
        con = _warehouse()
        try:
            _insert_resources(con, table)
            present = {r[0] for r in con.execute("SELECT DISTINCT type FROM resources").fetchall()}
            chosen = sorted(views[t][0] for t in present if t in views)
            build_views(con, names=chosen)
            parts = [
                f'SELECT \'{t}\' AS type, "{key}" AS id, center, any_value("{patient}") AS route '
                f'FROM flat."{view}" GROUP BY ALL'
                for t, (view, key, patient) in views.items()
                if t in present
            ]
            joined = (
                "SELECT r.*, p.route FROM resources r LEFT JOIN ("
                + " UNION ALL ".join(parts)
                + ") p ON p.center = r.center AND p.type = r.type AND p.id = r.id"
                if parts
                else "SELECT r.*, NULL::VARCHAR AS route FROM resources r"
            )
            out = con.sql(
                f"SELECT center, type, id, last_updated, source_file, source_pos, load_id, "
                f"CAST(resource AS VARCHAR) AS resource, route FROM ({joined})"
            ).to_arrow_table()
        finally:
            con.close()
        yield from out.cast(ROUTED).to_batches()


# --- output files ------------------------------------------------------------------------------------
class Sink:
    """Parquet files under one root (local path or any pyarrow.fs URI), each written under a hidden
    temporary name and moved into place, so a reader never sees half a file and a retry replaces it."""

    def __init__(self, root: str) -> None:
        from pyarrow import fs as pafs

        if _is_remote(root):
            self.fs, self.root = pafs.FileSystem.from_uri(root)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), local_name(root)

    def write(self, folder: str, name: str, table: pa.Table, attempt: str = "0") -> None:
        directory = f"{self.root}/{folder}"
        self.fs.create_dir(directory, recursive=True)
        temp = f"{directory}/.{name}.{attempt}.{os.getpid()}.tmp"
        with self.fs.open_output_stream(temp) as out:
            pq.write_table(table, out, compression="zstd")
        self.fs.move(temp, f"{directory}/{name}")


def output_folder(table: str) -> str:
    """flat.patient -> flat/patient; measure_results -> measure_results."""
    return table.replace(".", "/")


def _fail_once(marker: str | None, where: str) -> None:
    """Test hook (inert unless a marker path is given): the first task to get here creates the marker
    and raises, so Spark retries it; every later attempt passes."""
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, where.encode())
    os.close(fd)
    raise RuntimeError(f"injected task failure ({FAIL_ONCE_ENV}) at {where}")


def compute_tables(
    con: duckdb.DuckDBPyConnection, period_start: date, period_end: date, tables: Iterable[str]
) -> Iterator[tuple[str, pa.Table]]:
    """The embedded pipeline on the warehouse behind ``con``: views, every measure, patient attributes;
    yields (table, rows) of ``tables``, each sorted so that a partition's files are byte-stable."""
    from chc_equity.equity.attributes import build_patient_attributes
    from chc_equity.measures.engine import run_measures
    from chc_equity.measures.registry import all_measures
    from chc_equity.views.build import build_views

    build_views(con)
    run_measures(con, all_measures(), period_start=period_start, period_end=period_end)
    build_patient_attributes(con, period_start=period_start, period_end=period_end)
    for table in tables:
        name = table if "." not in table else '{}."{}"'.format(*table.split("."))
        yield table, con.sql(f"SELECT * FROM {name} ORDER BY ALL").to_arrow_table()


def all_tables() -> list[str]:
    """Every table the pipeline writes per partition: results and every built-in view's flat table."""
    from chc_equity.views.build import BUILTIN_VIEWS

    return [*RESULT_TABLES, *(f"flat.{name}" for name in sorted(BUILTIN_VIEWS))]


def patient_tables() -> list[str]:
    """The tables whose rows belong to patients: written by the partitions (the rest once, globally)."""
    from chc_equity.views.build import BUILTIN_VIEWS

    broadcast = global_types()
    return [
        *RESULT_TABLES,
        *(f"flat.{n}" for n in sorted(BUILTIN_VIEWS) if BUILTIN_VIEWS[n]["resource"] not in broadcast),
    ]


def compute(
    batches: Iterable[pa.RecordBatch],
    *,
    globals_ipc: bytes,
    period_start: date,
    period_end: date,
    staging: str,
    dimensions: Iterable[str] = (),
    fail_once: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """One partition of whole patients -> its rows of every patient table, as Parquet files named after
    the partition; yields rows written per table and the partition's stratum counts per dimension."""
    from pyspark import TaskContext

    context = TaskContext.get()
    part = context.partitionId() if context is not None else 0
    attempt = str(context.attemptNumber()) if context is not None else "0"
    rows = [b for b in batches if b.num_rows]
    if not rows:
        return
    table = pa.Table.from_batches(rows).select(RESOURCES.names)
    con = _warehouse()
    try:
        _insert_resources(con, table)
        glob = pa.ipc.open_stream(globals_ipc).read_all()
        if glob.num_rows:
            con.register("_spark_globals", glob)
            con.execute(
                "INSERT INTO resources SELECT g.center, g.type, g.id, g.last_updated, g.source_file, "
                "g.source_pos, g.load_id, CAST(g.resource AS JSON) FROM _spark_globals g "
                "WHERE g.center IN (SELECT DISTINCT center FROM resources)"
            )
            con.unregister("_spark_globals")
        sink = Sink(staging)
        out_rows: dict[str, list] = {n: [] for n in PARTIAL.names}
        for i, (name, out) in enumerate(compute_tables(con, period_start, period_end, patient_tables())):
            sink.write(output_folder(name), f"part-{part:05d}.parquet", out, attempt)
            _append(out_rows, kind="rows", key=name, num=out.num_rows)
            if i == 0:  # mid-run: one table of this partition is already written
                _fail_once(fail_once, f"partition {part}")
        for dimension, row in partial_counts(con, dimensions, period_start, period_end):
            _append(
                out_rows,
                kind="strata",
                key=dimension,
                measure=row[0],
                group_id=row[1],
                stratum=row[2],
                num=row[3],
                den=row[4],
            )
    finally:
        con.close()
    yield _batch(out_rows, PARTIAL)


def _append(columns: dict[str, list], **values: object) -> None:
    for name, column in columns.items():
        column.append(values.get(name))


def partial_counts(
    con: duckdb.DuckDBPyConnection, dimensions: Iterable[str], period_start: date, period_end: date
) -> Iterator[tuple[str, tuple]]:
    """(dimension, (measure, group, stratum, num, den)) of this warehouse's patients, for every measure,
    by the embedded stratifier's own query without its HAVING (the sum over partitions applies it)."""
    from chc_equity.equity.stratify import resolve_measures, stratum_counts_sql

    where = "r.measure IN (SELECT unnest($measures)) AND r.period_start = $ps AND r.period_end = $pe"
    params = {"measures": resolve_measures(None), "ps": period_start, "pe": period_end}
    for dimension in dimensions:
        for row in con.execute(stratum_counts_sql([dimension], where, having=False), params).fetchall():
            yield dimension, row


def compute_globals(glob: pa.Table, period_start: date, period_end: date, staging: str) -> dict[str, int]:
    """On the driver: the resources of no patient alone -> the flat tables of their types (written once,
    not by every partition), and an empty file of every other table, so each table has its schema
    even when no partition holds a row."""
    con = _warehouse(threads=2)
    try:
        _insert_resources(con, glob)
        sink = Sink(staging)
        patient = set(patient_tables())
        counts = {}
        for name, out in compute_tables(con, period_start, period_end, all_tables()):
            if name in patient:
                out = out.slice(0, 0)
            sink.write(output_folder(name), "part-global.parquet", out)
            counts[name] = out.num_rows
        return counts
    finally:
        con.close()
