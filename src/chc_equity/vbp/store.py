"""Where imported payer files live: warehouse tables (``vbp_*``), beside the data they are compared with.

Why the warehouse and not the app database: a roster, a gap file, claims and fills are *imported data*
that every page derives figures from together with the measure results and encounters (joins in DuckDB),
they are replaced wholesale by the next file, and nobody edits them in the app. They go into the serving
snapshot like the other derived tables, so the web reads them without touching the warehouse.

Replacement rules (each import is one transaction): a roster or a gap file is the payer's complete
current list, so it replaces that payer's rows for the center; claims and fills files add to what is
there and replace only the rows of the same source file name (re-importing a file is idempotent).
Bad records go to ``vbp_rejects`` with file, line, field and reason; good ones load.
Every member is linked to a patient on import (:mod:`chc_equity.vbp.link`), so pages need no raw JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import duckdb

from chc_equity.vbp.contract import Contract
from chc_equity.vbp.cost import Claim
from chc_equity.vbp.link import Linker, patient_keys
from chc_equity.vbp.payer_gaps import PayerGap
from chc_equity.vbp.pdc import Fill
from chc_equity.vbp.roster import Member, Rejected

TABLES = ("vbp_roster", "vbp_payer_gaps", "vbp_claims", "vbp_fills", "vbp_contracts", "vbp_rejects")
DDL = """
CREATE TABLE IF NOT EXISTS vbp_roster (
    center VARCHAR NOT NULL, payer VARCHAR NOT NULL, member_id VARCHAR NOT NULL,
    family VARCHAR, given VARCHAR, birth_date DATE, gender VARCHAR,
    start_date DATE NOT NULL, end_date DATE, mrn VARCHAR,
    patient_id VARCHAR, link_rule VARCHAR NOT NULL, source VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS vbp_payer_gaps (
    center VARCHAR NOT NULL, payer VARCHAR NOT NULL, member_id VARCHAR NOT NULL,
    family VARCHAR, given VARCHAR, birth_date DATE,
    payer_measure VARCHAR NOT NULL, cms_id VARCHAR, status VARCHAR NOT NULL, detail VARCHAR,
    patient_id VARCHAR, link_rule VARCHAR NOT NULL, source VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS vbp_claims (
    center VARCHAR NOT NULL, payer VARCHAR NOT NULL, claim_id VARCHAR NOT NULL, member_id VARCHAR NOT NULL,
    service_date DATE NOT NULL, setting VARCHAR NOT NULL, paid DECIMAL(14, 2) NOT NULL,
    source VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS vbp_fills (
    center VARCHAR NOT NULL, patient_id VARCHAR, member_id VARCHAR, fill_date DATE NOT NULL,
    days_supply INTEGER NOT NULL, drug VARCHAR NOT NULL, source VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS vbp_contracts (
    center VARCHAR NOT NULL, contract_id VARCHAR NOT NULL, payer VARCHAR NOT NULL, body JSON NOT NULL,
    loaded_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS vbp_rejects (
    center VARCHAR NOT NULL, kind VARCHAR NOT NULL, source VARCHAR NOT NULL, line INTEGER,
    field VARCHAR, reason VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL
);
"""


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def available(con: duckdb.DuckDBPyConnection, table: str = "vbp_roster") -> bool:
    q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = ?"
    return bool(con.execute(q, [table]).fetchone()[0])


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def _rejects(con, center: str, kind: str, source: str, rejects: Iterable[Rejected], at: datetime) -> int:
    con.execute(
        "DELETE FROM vbp_rejects WHERE center = ? AND kind = ? AND source = ?", [center, kind, source]
    )
    rows = [(center, kind, source, r.line, r.field, r.reason, at) for r in rejects]
    if rows:
        con.executemany("INSERT INTO vbp_rejects VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def _tx(con: duckdb.DuckDBPyConnection):
    class _T:
        def __enter__(self):
            con.execute("BEGIN TRANSACTION")

        def __exit__(self, kind, *_):
            con.execute("ROLLBACK" if kind else "COMMIT")

    return _T()


def import_roster(
    con: duckdb.DuckDBPyConnection, center: str, members: list[Member], rejects: list[Rejected], source: str
) -> dict[str, int]:
    """Replace the roster of every payer in ``members`` for ``center``; returns counts by link rule."""
    ensure(con)
    linker = Linker(patient_keys(con, center))
    at = _now()
    rows, counts = [], {"rejected": 0}
    for m in members:
        pid, rule = linker.link([m.member_id, m.mrn, *m.identifiers], m.family, m.given, m.birth_date)
        counts[rule] = counts.get(rule, 0) + 1
        rows.append((center, m.payer, m.member_id, m.family, m.given, m.birth_date, m.gender, m.start, m.end,
                     m.mrn, pid, rule, source, at))  # fmt: skip
    with _tx(con):
        for payer in sorted({m.payer for m in members}):
            con.execute("DELETE FROM vbp_roster WHERE center = ? AND payer = ?", [center, payer])
        if rows:
            con.executemany(f"INSERT INTO vbp_roster VALUES ({', '.join(['?'] * 14)})", rows)
        counts["rejected"] = _rejects(con, center, "roster", source, rejects, at)
    return counts


def import_gaps(
    con: duckdb.DuckDBPyConnection, center: str, gaps: list[PayerGap], rejects: list[Rejected], source: str
) -> dict[str, int]:
    ensure(con)
    linker = Linker(patient_keys(con, center))
    at = _now()
    rows, counts = [], {"rejected": 0}
    for g in gaps:
        pid, rule = linker.link([g.member_id, *g.identifiers], g.family, g.given, g.birth_date)
        counts[rule] = counts.get(rule, 0) + 1
        rows.append((center, g.payer, g.member_id, g.family, g.given, g.birth_date, g.measure, g.cms_id,
                     g.status, g.detail, pid, rule, source, at))  # fmt: skip
    with _tx(con):
        for payer in sorted({g.payer for g in gaps}):
            con.execute("DELETE FROM vbp_payer_gaps WHERE center = ? AND payer = ?", [center, payer])
        if rows:
            con.executemany(f"INSERT INTO vbp_payer_gaps VALUES ({', '.join(['?'] * 14)})", rows)
        counts["rejected"] = _rejects(con, center, "gaps", source, rejects, at)
    return counts


def import_claims(
    con: duckdb.DuckDBPyConnection, center: str, claims: list[Claim], rejects: list[Rejected], source: str
) -> dict[str, int]:
    ensure(con)
    at = _now()
    rows = [(center, c.payer, c.claim_id, c.member_id, c.service_date, c.setting, c.paid, source, at)
            for c in claims]  # fmt: skip
    with _tx(con):
        con.execute("DELETE FROM vbp_claims WHERE center = ? AND source = ?", [center, source])
        if rows:
            con.executemany("INSERT INTO vbp_claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        n = _rejects(con, center, "claims", source, rejects, at)
    return {"loaded": len(rows), "rejected": n}


def import_fills(
    con: duckdb.DuckDBPyConnection,
    center: str,
    fills: list[tuple[Fill, str | None]],
    rejects: list[Rejected],
    source: str,
) -> dict[str, int]:
    """``fills``: (fill, member id or None); a fill whose patient id is empty is linked by member id
    through the roster of the center."""
    ensure(con)
    at = _now()
    members = dict(
        con.execute(
            "SELECT member_id, any_value(patient_id) FROM vbp_roster"
            " WHERE center = ? AND patient_id IS NOT NULL"
            " GROUP BY member_id",
            [center],
        ).fetchall()
    )
    rows = []
    for f, member in fills:
        pid = f.patient_id or members.get(member or "")
        rows.append((center, pid, member, f.day, f.days_supply, f.drug, source, at))
    with _tx(con):
        con.execute("DELETE FROM vbp_fills WHERE center = ? AND source = ?", [center, source])
        if rows:
            con.executemany("INSERT INTO vbp_fills VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        n = _rejects(con, center, "fills", source, rejects, at)
    return {"loaded": len(rows), "unlinked": sum(1 for r in rows if not r[1]), "rejected": n}


def save_contract(con: duckdb.DuckDBPyConnection, center: str, contract: Contract) -> None:
    ensure(con)
    with _tx(con):
        con.execute("DELETE FROM vbp_contracts WHERE center = ? AND contract_id = ?", [center, contract.id])
        con.execute(
            "INSERT INTO vbp_contracts VALUES (?, ?, ?, ?, ?)",
            [center, contract.id, contract.payer, contract.model_dump_json(), _now()],
        )


# ----------------------------------------------------------------------------------- reads
def members(
    con: duckdb.DuckDBPyConnection, center: str, payer: str | None = None
) -> list[tuple[Member, str | None]]:
    if not available(con):
        return []
    rows = con.execute(
        """SELECT payer, member_id, family, given, birth_date, gender, start_date, end_date, mrn, patient_id
             FROM vbp_roster WHERE center = ? AND (? IS NULL OR payer = ?)
            ORDER BY payer, member_id, start_date""",
        [center, payer, payer],
    ).fetchall()
    return [(Member(p, m, f or "", g or "", b, s or "", st, e, mrn or ""), pid)
            for p, m, f, g, b, s, st, e, mrn, pid in rows]  # fmt: skip


def payers(con: duckdb.DuckDBPyConnection, center: str) -> list[str]:
    if not available(con):
        return []
    return [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT payer FROM vbp_roster WHERE center = ? ORDER BY 1", [center]
        ).fetchall()
    ]


def claims(con: duckdb.DuckDBPyConnection, center: str) -> list[Claim]:
    if not available(con, "vbp_claims"):
        return []
    rows = con.execute(
        "SELECT claim_id, payer, member_id, service_date, setting, paid FROM vbp_claims WHERE center = ?",
        [center],
    ).fetchall()
    return [Claim(c, p, m, d, s, Decimal(str(v))) for c, p, m, d, s, v in rows]


def fills(con: duckdb.DuckDBPyConnection, center: str) -> list[Fill]:
    if not available(con, "vbp_fills"):
        return []
    rows = con.execute(
        "SELECT patient_id, fill_date, days_supply, drug FROM vbp_fills"
        " WHERE center = ? AND patient_id IS NOT NULL",
        [center],
    ).fetchall()
    return [Fill(p, d, n, drug) for p, d, n, drug in rows]


def payer_gaps(
    con: duckdb.DuckDBPyConnection, center: str, payer: str | None = None
) -> list[tuple[PayerGap, str | None]]:
    if not available(con, "vbp_payer_gaps"):
        return []
    rows = con.execute(
        """SELECT payer, member_id, family, given, birth_date, payer_measure, status, detail, patient_id
             FROM vbp_payer_gaps WHERE center = ? AND (? IS NULL OR payer = ?)""",
        [center, payer, payer],
    ).fetchall()
    return [
        (PayerGap(p, m, f or "", g or "", b, pm, st, d or ""), pid) for p, m, f, g, b, pm, st, d, pid in rows
    ]


def contracts(con: duckdb.DuckDBPyConnection, center: str) -> list[Contract]:
    if not available(con, "vbp_contracts"):
        return []
    rows = con.execute(
        "SELECT body FROM vbp_contracts WHERE center = ? ORDER BY contract_id", [center]
    ).fetchall()
    return [Contract.model_validate_json(b) for (b,) in rows]


def rejects(con: duckdb.DuckDBPyConnection, center: str) -> list[tuple]:
    if not available(con, "vbp_rejects"):
        return []
    return con.execute(
        "SELECT kind, source, line, field, reason FROM vbp_rejects"
        " WHERE center = ? ORDER BY kind, source, line",
        [center],
    ).fetchall()
