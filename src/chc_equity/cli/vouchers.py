"""`chc-equity vouchers ...`: the farmworker voucher program -- argument parsing and printing only
(the work is in chc_equity.vouchers)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app
from chc_equity.warehouse import warehouse_path


def out() -> Console:
    """The console for this command's output, made when it prints: its width follows the terminal (or
    ``COLUMNS``) of the run, not of whichever process first imported this module."""
    return Console()


def err() -> Console:
    return Console(stderr=True)


vouchers_app = typer.Typer(
    help="Farmworker voucher program: setup, claims import and adjudication, budget, reports.",
    no_args_is_help=True,
)
app.add_typer(vouchers_app, name="vouchers")

WarehouseOpt = Annotated[
    Path | None,
    typer.Option("--warehouse", "-w", help="DuckDB warehouse file whose app database holds the program."),
]
ByOpt = Annotated[str, typer.Option("--by", help="Who is doing this (recorded with every decision).")]
OnOpt = Annotated[str | None, typer.Option("--on", help="Decision / as-of day YYYY-MM-DD (default: today).")]


def _db(warehouse: Path | None):
    from chc_equity.appdb import open_for_warehouse

    return open_for_warehouse(warehouse_path(warehouse))


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else date.today()


def _fail(message: str) -> None:
    err().print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


@vouchers_app.command("setup")
def setup(program: Path, warehouse: WarehouseOpt = None, by: ByOpt = "setup") -> None:
    """Load a program (JSON: budget_lines, providers, fees, people, verifications, vouchers) into the app
    database; vouchers are issued through the same rules as the web form (one transaction)."""
    from chc_equity.vouchers import store
    from chc_equity.vouchers.setup import cents

    raw = json.loads(program.read_text())
    db = _db(warehouse)
    try:
        with db.write() as s:
            counts = store.load_program(s, raw, by)
            for v in raw.get("vouchers", []):
                store.issue(s, voucher_id=v["id"], patient_id=v["patient_id"],
                            budget_line_id=v.get("budget_line_id") or raw["budget_lines"][0]["id"],
                            services=v["services"], issued_on=date.fromisoformat(v["issued_on"]),
                            expires_on=date.fromisoformat(v["expires_on"]), max_cents=cents(v["max_amount"]),
                            max_units=v.get("max_units"), provider_id=v.get("provider_id"), by=by,
                            idempotency_key=f"setup:{v['id']}")  # fmt: skip
                if v.get("voided"):
                    store.void(s, v["id"], by, date.fromisoformat(v["issued_on"]))
    except (store.VoucherError, store.NotFound, store.Conflict, KeyError) as exc:
        _fail(f"{program}: {exc}")
    out().print(
        ", ".join(f"{n} {k}" for k, n in counts.items()) + f", {len(raw.get('vouchers', []))} vouchers"
    )


@vouchers_app.command("import")
def import_claims(
    files: Annotated[list[Path], typer.Argument(help="Claims files (.csv or .xlsx, the provider template).")],
    warehouse: WarehouseOpt = None,
    by: ByOpt = "cli",
    adjudicate: Annotated[bool, typer.Option(help="Adjudicate the new lines after each import.")] = True,
    on: OnOpt = None,
) -> None:
    """Import claims files, each in one transaction (all of it or none); the same file again adds nothing."""
    from chc_equity.vouchers import store
    from chc_equity.vouchers.claims_file import ClaimsFileError, read_claims

    db = _db(warehouse)
    for path in files:
        try:
            parsed = read_claims(path)
            with db.write() as s:
                r = store.import_claims(s, parsed, by)
        except (ClaimsFileError, store.Conflict) as exc:
            _fail(str(exc))
        for reject in parsed.rejects:
            out().print(f"{path.name}: line {reject.line}: {reject.field}: {reject.reason}")
        if r.replay:
            out().print(f"{path.name}: imported before, nothing added")
            continue
        decided = ""
        if adjudicate:
            with db.write() as s:
                decided = f", {store.adjudicate_open(s, by, _day(on), r.file_id)} adjudicated"
        out().print(f"{path.name}: {r.new_lines} new lines, {r.already_received} already received, "
                  f"{r.rejects} rejected{decided}")  # fmt: skip


@vouchers_app.command("adjudicate")
def adjudicate(warehouse: WarehouseOpt = None, by: ByOpt = "cli", on: OnOpt = None) -> None:
    """Adjudicate every open claim line, in the order received."""
    from chc_equity.vouchers import store

    with _db(warehouse).write() as s:
        out().print(f"{store.adjudicate_open(s, by, _day(on))} lines adjudicated")


@vouchers_app.command("budget")
def show_budget(warehouse: WarehouseOpt = None, on: OnOpt = None) -> None:
    """Budget lines: paid + encumbered + remaining = budget, with 80 % / 95 % warnings and the forecast."""
    from chc_equity.vouchers import report, store
    from chc_equity.vouchers.setup import dollars

    table = Table("line", "budget", "paid", "encumbered", "remaining", "committed", "warning", "forecast")
    with _db(warehouse).read() as s:
        for b in report.budget_rows(s, _day(on)):
            p = b.position
            table.add_row(b.id, dollars(p.budget_cents), dollars(p.paid_cents), dollars(p.encumbered_cents),
                          dollars(p.remaining_cents), f"{100 * p.committed_share:.1f} %", p.warning or "",
                          dollars(b.forecast_cents) if b.forecast_cents is not None else "")  # fmt: skip
            problems = store.reconcile(s, b.id, _day(on))
            if problems:
                err().print(f"[red]{b.id} does not reconcile:[/] {'; '.join(problems)}")
    out().print(table)


@vouchers_app.command("report")
def write_report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report CSVs.")],
    year: Annotated[int, typer.Option(help="Calendar year of service.")],
    warehouse: WarehouseOpt = None,
    udsplus_out: Annotated[
        Path | None,
        typer.Option(
            "--udsplus-out",
            help="Also write the voucher patients as de-identified UDS+ Patients "
            "(agricultural-worker extension) here: Patient.ndjson and validation.csv.",
        ),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="UDS+ pseudonym key (>= 32 bytes; default $CHC_EQUITY_UDSPLUS_KEY)"),
    ] = None,
) -> None:
    """UDS Table 4 agricultural-worker lines, Table 5-style visits, patients by ZIP, denial reasons and
    program figures for voucher patients; counts 1-10 are suppressed (blank) in what leaves the system.
    With --udsplus-out, the UDS+ Patients of the year's voucher patients too (docs/vouchers.md)."""
    from chc_equity.vouchers import report

    key = None
    if udsplus_out is not None:
        from chc_equity.udsplus.relink import load_key

        try:
            key = load_key(key_file)
        except (OSError, ValueError) as exc:
            _fail(str(exc))

    out_dir.mkdir(parents=True, exist_ok=True)
    with _db(warehouse).read() as s:
        t4 = report.uds_table4(s, year)
        t5 = report.uds_table5(s, year)
        # Table 4 and patients by ZIP count the same patients: suppressed together (report.published_patients)
        t4_rows, zip_rows = report.published_patients(t4, report.patients_by_zip(s, year))
        tables = {
            "uds_table4_agricultural.csv": (("line", "patients"), t4_rows),
            "uds_table5_voucher_visits.csv": (("service_type", "visits"),
                                              report.published([(t, v) for t, v, _ in t5])),
            "patients_by_zip.csv": (("zip", "patients"), zip_rows),
            "denial_reasons.csv": (("reason", "lines"), report.published(report.denial_reasons(s))),
            "services_by_provider.csv": (("provider", "visits"),
                                         report.published([(r.label, r.visits)
                                                           for r in report.services(s, year, "provider")])),
        }  # fmt: skip
        figures = report.program_figures(s, year)
        if udsplus_out is not None and key is not None:
            from chc_equity.vouchers import udsplus

            result = udsplus.voucher_patients(s, year, key)
    from chc_equity.exports import csv_writer

    for name, (header, rows) in tables.items():
        with (out_dir / name).open("w", newline="") as f:
            w = csv_writer(f)
            w.writerow(header)
            w.writerows(("" if v is None else v for v in row) for row in rows)
    cost = figures["cost_cents"]
    out().print(f"{len(tables)} files in {out_dir}; purchased services {cost / 100:,.2f}")
    if udsplus_out is not None:
        udsplus.write(result, udsplus_out)
        gaps = Counter(result.missing.values())  # counts only: no patient id in the output
        not_reported = "".join(f"; {n} not reported (no {what})" for what, n in sorted(gaps.items()))
        out().print(f"{len(result.patients)} UDS+ Patients in {udsplus_out}, "
                  f"{len(result.violations)} violations{not_reported}")  # fmt: skip
        if result.violations:
            raise typer.Exit(1)


@vouchers_app.command("remittance")
def write_remittance(
    provider: Annotated[str, typer.Option(help="The provider id.")],
    out_file: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    warehouse: WarehouseOpt = None,
) -> None:
    """One provider's remittance advice (its decided lines only: paid amounts, reason codes and words)."""
    from chc_equity.exports import csv_writer  # provider-typed text never runs as a spreadsheet formula
    from chc_equity.vouchers import report

    with _db(warehouse).read() as s:
        rows = report.remittance(s, provider)
    with out_file.open("w", newline="") as f:
        w = csv_writer(f)
        w.writerow(report.REMITTANCE_COLUMNS)
        w.writerows(rows)
    paid = sum(float(r[10]) for r in rows)
    out().print(f"{provider}: {len(rows)} decided lines, {paid:,.2f} paid -> {out_file}")


@vouchers_app.command("synth")
def synth(
    out_dir: Annotated[Path, typer.Argument(help="Folder for program.json, claims/*.csv, truth.csv.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 20,
    households: Annotated[int, typer.Option(help="Households in the season.")] = 30,
    replay: Annotated[bool, typer.Option(help="Also replay the season into the app database.")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """A synthetic season (MA and CT providers, households, vouchers, weekly claims files with planted
    errors); with --replay, run it through the app database day by day, checking the budget each step."""
    from chc_equity.vouchers import season as synth_season
    from chc_equity.vouchers import store

    s = synth_season.generate(seed=seed, households=households)
    if not replay:
        synth_season.write_season(s, out_dir)
        planted = sum(r is not None for r in s.truth.values())
        out().print(f"{len(s.lines)} claim lines ({planted} planted errors) in {out_dir}")
        return
    db = _db(warehouse)

    def check(step: synth_season.Step) -> None:
        with db.read() as session:
            problems = store.reconcile(session, synth_season.BUDGET_LINE, step.day)
        if problems:
            _fail(f"{step.day} {step.what}: {'; '.join(problems)}")

    steps = synth_season.replay(db, s, out_dir, check=check)
    out().print(f"{len(steps)} steps replayed; the budget reconciled after each")
