"""Load the shipped terminology into DuckDB, where measure SQL joins it.

Rows go in as Arrow tables (one bulk copy each), so a load takes milliseconds and can be repeated on
every connection; ``CREATE OR REPLACE`` makes it idempotent.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from chc_equity.terminology.catalog import Terminology, data_fingerprint, terminology, warn_incomplete

# table name -> (DDL column list, for documentation and the CREATE) ; order matters for the Arrow tables
TABLES = {
    "valueset_codes": "valueset VARCHAR, oid VARCHAR, system VARCHAR, code VARCHAR",
    "valuesets": (
        "valueset VARCHAR, oid VARCHAR, name VARCHAR, title VARCHAR, version VARCHAR, code_count INTEGER, "
        "expected_total INTEGER, complete BOOLEAN, source VARCHAR, note VARCHAR"
    ),
    "direct_codes": "library VARCHAR, name VARCHAR, system VARCHAR, code VARCHAR",
    "cql_valuesets": "library VARCHAR, name VARCHAR, valueset VARCHAR",
}


def arrow_tables(term: Terminology) -> dict[str, pa.Table]:
    """The four tables as Arrow, columns in DDL order. Pure; unique rows by construction."""
    vs_url: list[str] = []
    vs_oid: list[str] = []
    systems: list[str] = []
    code_values: list[str] = []
    for url in sorted(term.codes):
        oid = term.valuesets[url].oid
        for system, code in sorted(term.codes[url]):
            vs_url.append(url)
            vs_oid.append(oid)
            systems.append(system)
            code_values.append(code)
    infos = sorted(term.valuesets.values(), key=lambda i: i.url)
    return {
        "valueset_codes": pa.table(
            {"valueset": vs_url, "oid": vs_oid, "system": systems, "code": code_values}
        ),
        "valuesets": pa.table({
            "valueset": [i.url for i in infos],
            "oid": [i.oid for i in infos],
            "name": [i.name for i in infos],
            "title": [i.title for i in infos],
            "version": [i.version for i in infos],
            "code_count": pa.array([i.code_count for i in infos], pa.int32()),
            "expected_total": pa.array([i.expected_total for i in infos], pa.int32()),
            "complete": [i.complete for i in infos],
            "source": [i.source for i in infos],
            "note": pa.array([i.note for i in infos], pa.string()),
        }),
        "direct_codes": pa.table({
            "library": [d.library for d in term.direct_codes],
            "name": [d.name for d in term.direct_codes],
            "system": [d.system for d in term.direct_codes],
            "code": [d.code for d in term.direct_codes],
        }),
        "cql_valuesets": pa.table({
            "library": [d.library for d in term.declarations],
            "name": [d.name for d in term.declarations],
            "valueset": [d.url for d in term.declarations],
        }),
    }


def load_terminology(con: duckdb.DuckDBPyConnection, *, warn: bool = True) -> None:
    """(Re)create ``valueset_codes``, ``valuesets``, ``direct_codes`` and ``cql_valuesets`` in ``con``.

    Each table carries the shipped data's fingerprint as its comment. Where the four tables of the
    connection's default database already carry it, nothing is rewritten; where another attached database
    holds them (the warehouse, seen from the in-memory copy a refresh runs the measures on), they are
    copied from it. Why: building them from the package data costs about half a CPU-second (Python
    lists, Arrow, and the pandas import pyarrow does on the way), paid before every ``run_measures`` --
    most of it again on every load's refresh -- while the data only changes with the package.

    Warns (IncompleteValueSetWarning) once per value set whose shipped codes are not exactly the
    official expansion, naming it, so a measure that depends on one cannot be trusted by accident.
    """
    tag = data_fingerprint()
    here = con.execute("SELECT current_database()").fetchone()[0]
    holders: dict[str, set[str]] = {}
    for database, table in con.execute(
        "SELECT database_name, table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT temporary "
        f"AND comment = ? AND table_name IN ({', '.join('?' * len(TABLES))})",
        [tag, *TABLES],
    ).fetchall():
        holders.setdefault(database, set()).add(table)
    current = sorted(db for db, tables in holders.items() if tables == set(TABLES))
    if here not in current:
        if current:
            source = current[0].replace('"', '""')
            for table in TABLES:
                con.execute(f'CREATE OR REPLACE TABLE {table} AS SELECT * FROM "{source}".main.{table}')
        else:
            for table, arrow in arrow_tables(terminology()).items():
                view = f"__terminology_{table}"
                con.register(view, arrow)
                try:
                    con.execute(f"CREATE OR REPLACE TABLE {table} ({TABLES[table]})")
                    con.execute(f"INSERT INTO {table} SELECT * FROM {view}")
                finally:
                    con.unregister(view)
        for table in TABLES:
            con.execute(f"COMMENT ON TABLE {table} IS '{tag}'")
    if warn:
        for info in sorted(terminology().valuesets.values(), key=lambda i: i.url):
            if not info.complete:
                warn_incomplete(info, stacklevel=3)
