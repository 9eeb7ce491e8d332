"""`chc-equity hospital ...`: partner-hospital ADT feeds -- argument parsing and printing only (the work
is in chc_equity.vbp: adt, matching, transitions, hospital)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chc_equity.cli import app
from chc_equity.warehouse import connect, warehouse_path

hospital_app = typer.Typer(
    help="Hospital partner data: import ADT feeds (HL7 v2 / FHIR), transitions of care, match review.",
    no_args_is_help=True,
)
app.add_typer(hospital_app, name="hospital")

WarehouseOpt = Annotated[Path | None, typer.Option("--warehouse", "-w", help="DuckDB warehouse file.")]
CenterOpt = Annotated[str, typer.Option("--center", "-c", help="The center whose patients are matched.")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Day YYYY-MM-DD (default: today).")]


def _day(value: str | None) -> date:
    return date.fromisoformat(value) if value else date.today()


def _authorities(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise typer.BadParameter(f"--authority {v!r}: write NAMESPACE=SYSTEM")
        k, system = v.split("=", 1)
        out[k.strip()] = system.strip()
    return out


@hospital_app.command("import-adt")
def import_adt(
    files: Annotated[
        list[Path], typer.Argument(help="HL7 v2 files (MLLP framed or not) or FHIR Bundles/NDJSON.")
    ],
    center: CenterOpt,
    warehouse: WarehouseOpt = None,
    authority: Annotated[
        list[str],
        typer.Option(
            "--authority", "-a", help="PID-3 assigning authority = Patient.identifier system (repeat)."
        ),
    ] = [],  # noqa: B006 (typer reads the default)
    hospital_name: Annotated[
        str, typer.Option("--hospital", help="Hospital of FHIR files without serviceProvider.")
    ] = "",
    by: Annotated[str, typer.Option("--by", help="Who imports (recorded with each event).")] = "import",
) -> None:
    """Read, match and store events; bad messages are quarantined with file, message, line and field."""
    from chc_equity.appdb import open_for_warehouse
    from chc_equity.vbp import hospital
    from chc_equity.vbp.adt import read_files
    from chc_equity.vbp.matching import Matcher

    result = read_files(files, hospital_name)
    con = connect(warehouse, read_only=True)
    try:
        patients = hospital.load_patients(con, center)
    finally:
        con.close()
    matcher = Matcher(patients, _authorities(authority))
    db = open_for_warehouse(warehouse_path(warehouse))
    with db.write() as s:
        summary = hospital.import_events(s, center, result, matcher, by)
    console = Console()
    console.print(
        f"{summary.events} events stored ({summary.matched} matched, {summary.review} to review, "
        f"{summary.unmatched} not our patients), {summary.duplicates} already known, "
        f"{summary.quarantined} quarantined."
    )
    for q in result.quarantined[:50]:
        console.print(f"  [yellow]quarantined[/] {q.describe()}", markup=True, highlight=False)
    if len(result.quarantined) > 50:
        console.print(f"  ... and {len(result.quarantined) - 50} more (see the web page)")


@hospital_app.command("transitions")
def transitions_cmd(
    center: CenterOpt,
    warehouse: WarehouseOpt = None,
    as_of: AsOfOpt = None,
    rates_by: Annotated[
        str | None,
        typer.Option("--rates", help="Print follow-up rates by 'hospital' or an equity dimension."),
    ] = None,
) -> None:
    """The transitions-of-care list (contact within 2 business days, visit within 7 / 14 days)."""
    from chc_equity.appdb.engine import read_only
    from chc_equity.appdb.worklist import overlay
    from chc_equity.vbp import hospital
    from chc_equity.vbp.transitions import WINDOWS, rates

    day = _day(as_of)
    con = connect(warehouse, read_only=True)
    try:
        rows = (
            read_only(
                warehouse_path(warehouse),
                lambda s: hospital.transition_list(s, con, center, day, overlay(s, center)),
            )
            or []
        )
        groups = None if rates_by in (None, "hospital") else hospital.strata(con, center, rates_by)
    finally:
        con.close()
    console = Console()
    if rates_by:
        table = Table("group", *[w for w in WINDOWS], title=f"Follow-up rates by {rates_by} (as of {day})")
        per = {w: {r.label: r for r in rates([r.transition for r in rows], groups, w)} for w in WINDOWS}
        for label in sorted({k for v in per.values() for k in v}):
            cells = []
            for w in WINDOWS:
                r = per[w].get(label)
                cells.append(
                    ""
                    if r is None
                    else "suppressed"
                    if r.suppressed
                    else f"{r.rate:.0%} ({r.numerator}/{r.denominator})"
                )
            table.add_row(label, *cells)
        console.print(table)
        return
    table = Table(
        "discharged",
        "hospital",
        "patient",
        "MRN",
        "phone",
        "CHW",
        "contact due",
        "contact",
        "visit 7 d",
        "visit 14 d",
        title=f"Transitions of care · {center} · as of {day}",
    )
    for r in rows:
        t = r.transition
        table.add_row(
            str(t.discharge.discharged),
            t.discharge.hospital,
            r.person.name if r.person else "",
            r.person.mrn if r.person else "",
            r.person.phone if r.person else "",
            r.chw or "",
            str(t.contact.due),
            t.contact.status,
            t.visit7.status,
            t.visit14.status,
        )
    console.print(table)


@hospital_app.command("review")
def review_cmd(
    center: CenterOpt,
    warehouse: WarehouseOpt = None,
    confirm: Annotated[int | None, typer.Option("--confirm", help="Review item id to confirm.")] = None,
    reject: Annotated[int | None, typer.Option("--reject", help="Review item id to reject.")] = None,
    by: Annotated[str, typer.Option("--by", help="Who decides.")] = "cli",
) -> None:
    """List the uncertain matches, or confirm / reject one candidate."""
    from chc_equity.appdb import open_for_warehouse
    from chc_equity.vbp import hospital

    db = open_for_warehouse(warehouse_path(warehouse))
    console = Console()
    if confirm is not None or reject is not None:
        decision, item = ("confirm", confirm) if confirm is not None else ("reject", reject)
        try:
            with db.write() as s:
                hospital.decide(s, center, item, decision, by)
        except hospital.ReviewError as exc:
            Console(stderr=True).print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        console.print(f"review item {item}: {decision}ed")
        return
    with db.read() as s:
        items = hospital.review_queue(s, center)
    table = Table(
        "id",
        "event",
        "hospital",
        "hospital's record",
        "candidate",
        "score",
        "why",
        title=f"Matches to review · {center}",
    )
    for i in items:
        table.add_row(
            str(i.review_id),
            f"{i.event_type} {i.event_day or ''}",
            i.hospital,
            i.incoming,
            i.candidate_id,
            f"{i.score:.2f}",
            i.reason,
        )
    console.print(table)


@hospital_app.command("synth-adt")
def synth_adt(
    out: Annotated[Path, typer.Argument(help="HL7 file to write.")],
    center: CenterOpt,
    warehouse: WarehouseOpt = None,
    seed: Annotated[int, typer.Option(help="Seed (same seed, same feed).")] = 1,
    stays: Annotated[int, typer.Option(help="Hospital stays (2 messages each).")] = 200,
    start: Annotated[str, typer.Option(help="First admission day YYYY-MM-DD.")] = "2026-01-05",
) -> None:
    """A synthetic ADT feed from the warehouse's patients, with planted typos, twins and broken messages
    (import it with ``--authority CENTERMRN=<the patients' MRN system>``)."""
    from chc_equity.vbp import adt_synth, hospital

    con = connect(warehouse, read_only=True)
    try:
        patients = hospital.load_patients(con, center)
    finally:
        con.close()
    if not patients:
        Console(stderr=True).print(f"[red]error:[/] no patients of center {center!r} in the warehouse")
        raise typer.Exit(1)
    feed = adt_synth.feed(patients, seed, stays=stays, start=date.fromisoformat(start))
    out.write_bytes(feed.text.encode())  # segments end in CR, a blank line between messages
    systems = sorted({s for p in patients for s, _ in p.identifiers})
    Console().print(f"wrote {len(feed.truth)} messages to {out} (MRN systems: {', '.join(systems)})")
