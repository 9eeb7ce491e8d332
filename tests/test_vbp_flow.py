"""Value-based payment end to end on a warehouse made the real way (synthetic FHIR -> ingest -> measures ->
precompute), with the synthetic payer of chc_equity.vbp.synth imported through the CLI; the figures are
checked against the raw resources and measure results, and the pages against the access rules."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from browser.webseed import PERIOD, add_users, build_synthetic_warehouse, login, make_app
from chc_equity.cli import _register
from chc_equity.cli import app as cli
from chc_equity.vbp import report, store
from chc_equity.vbp.roster import months_back
from chc_equity.warehouse import connect

AS_OF = PERIOD[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    folder = tmp_path_factory.mktemp("vbp")
    path, centers = build_synthetic_warehouse(folder, centers=1, patients=250)
    _register("vbp")
    files = folder / "payer"
    run = CliRunner().invoke(cli, ["vbp", "synth", "-c", centers[0], str(files), "--load", "-w", str(path)])
    assert run.exit_code == 0, run.output
    return path, centers[0], files


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def test_active_panel_equals_raw_encounters(built) -> None:
    path, center, _ = built
    start = months_back(AS_OF, 24)
    con = connect(path, read_only=True)
    try:
        expected = set()
        for (raw,) in con.execute(
            "SELECT resource FROM resources WHERE center = ? AND type = 'Encounter'", [center]
        ).fetchall():
            e = json.loads(raw)
            day = date.fromisoformat(e["period"]["start"][:10])
            if e["status"] not in ("cancelled", "entered-in-error", "planned") and start < day <= AS_OF:
                expected.add(e["subject"]["reference"].split("/")[-1])
        assert report.seen_patients(con, center, AS_OF) == expected and expected
    finally:
        con.close()


def test_roster_linking_and_reconciliation(built) -> None:
    path, center, files = built
    rows = _csv(files / "roster.csv")
    con = connect(path, read_only=True)
    try:
        linked = store.members(con, center)
        rules = Counter(
            r
            for (r,) in con.execute("SELECT link_rule FROM vbp_roster WHERE center = ?", [center]).fetchall()
        )
        view = report.roster_view(con, center, linked[0][0].payer, AS_OF)
        seen = report.seen_patients(con, center, AS_OF)
    finally:
        con.close()
    assert len(linked) == len(rows)
    with_mrn = sum(1 for r in rows if r["mrn"])
    assert rules["identifier"] == with_mrn > 0 and rules["name+birth date"] > 0 and rules["none"] > 0
    assert not rules["ambiguous"]
    rec = view.reconciliation
    attributed = {m.member_id for m, _ in linked if m.covers(AS_OF)}
    assert set(rec.attributed_seen) | set(rec.attributed_not_seen) == attributed
    assert not set(rec.attributed_seen) & set(rec.attributed_not_seen)
    pid_of = {m.member_id: p for m, p in linked if p}
    assert all(pid_of[m] in seen for m in rec.attributed_seen)
    assert all(pid_of.get(m) not in seen for m in rec.attributed_not_seen)
    assert set(rec.unmatched) <= set(rec.attributed_not_seen)
    assert not set(rec.seen_not_attributed) & {pid_of[m] for m in attributed if m in pid_of}
    # member months: members attributed on each month's first day, counted from the CSV directly
    for month, n in view.member_months:
        want = {
            r["member_id"]
            for r in rows
            if r["attribution_start"] <= month.isoformat()
            and (not r["attribution_end"] or r["attribution_end"] >= month.isoformat())
        }
        assert n == len(want), month


def test_payer_gaps_submit_rows_are_closed_in_measure_results(built) -> None:
    path, center, _ = built
    con = connect(path, read_only=True)
    try:
        rows, period = report.payer_gap_view(con, center, store.payers(con, center)[0], AS_OF)
        met = {
            (p, m)
            for p, m in con.execute(
                """SELECT r.patient_id, a.cms_id FROM measure_results r
                     JOIN (SELECT DISTINCT measure, cms_id, inverse FROM agg_measure) a USING (measure)
                    WHERE r.center = ? AND r.group_id = 'Group_1'
                      AND r.denominator AND NOT r.denominator_exclusion
                      AND NOT r.denominator_exception AND (r.numerator <> a.inverse)""",
                [center],
            ).fetchall()
        }
    finally:
        con.close()
    kinds = Counter(r.agreement for r in rows)
    assert kinds["submit"] > 0 and kinds["both-open"] > 0, kinds
    for r in rows:
        if r.agreement == "submit":
            assert (r.patient_id, r.cms_id) in met
        if r.agreement == "both-open":
            assert (r.patient_id, r.cms_id) not in met


def test_payer_gaps_on_the_chw_worklist(built) -> None:
    """The worklist, given the payer files as an item source, carries exactly the merge's both-open and
    payer-only gaps of linked patients, never a gap our records close (submit)."""
    from chc_equity.outreach import worklist as wl
    from chc_equity.vbp.worklist import payer_items

    path, center, _ = built
    con = connect(path, read_only=True)
    try:
        period = report.measure_period(con)
        rows = [r for p in store.payers(con, center) for r in report.payer_gap_view(con, center, p, AS_OF)[0]]
        plain = wl.collect(con, center, period=period, as_of=AS_OF)
        merged = wl.collect(con, center, period=period, as_of=AS_OF, sources=(payer_items,))
    finally:
        con.close()
    want = {
        (r.patient_id, r.cms_id or r.payer_measure)
        for r in rows
        if r.patient_id and r.agreement in ("both-open", "payer-only")
    }
    got = {(r.patient_id, i.code) for r in merged for i in r.items if i.kind == "payer-gap"}
    assert got == want and any(code for _, code in got)
    submit = {(r.patient_id, r.cms_id) for r in rows if r.agreement == "submit"}
    assert submit and not (got & submit)
    assert not any(i.kind == "payer-gap" for r in plain for i in r.items)
    before = {r.patient_id: r.tally() for r in plain}
    for r in merged:  # a payer's gap counts as a gap in the priority score
        extra = sum(1 for i in r.items if i.kind == "payer-gap")
        gaps, social, follow = before.get(r.patient_id, (0, 0, 0))
        assert r.tally() == (gaps + extra, social, follow)


def test_cli_reports_and_bad_files(built, tmp_path: Path) -> None:
    path, center, files = built
    runner = CliRunner()
    est = runner.invoke(cli, ["vbp", "estimate", "-c", center, "-w", str(path)])
    assert est.exit_code == 0 and "quality score" in est.output, est.output
    pdc = runner.invoke(cli, ["vbp", "pdc", "-c", center, "--year", str(AS_OF.year), "-w", str(path)])
    assert pdc.exit_code == 0 and "Statins" in pdc.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "payer,member_id,birth_date,attribution_start\nZZ,1,1970-01-01,2026-01-01\nZZ,2,x,2026-01-01\n"
    )
    done = runner.invoke(cli, ["vbp", "import", "roster", str(bad), "-c", center, "-w", str(path)])
    assert done.exit_code == 0 and "rejected 1" in done.output, done.output
    con = connect(path, read_only=True)
    try:
        assert ("roster", "bad.csv", 3, "birth_date") in [r[:4] for r in store.rejects(con, center)]
    finally:
        con.close()
    bad.write_text("member,x\n1,2\n")
    fail = runner.invoke(cli, ["vbp", "import", "roster", str(bad), "-c", center, "-w", str(path)])
    assert fail.exit_code == 1 and "line 1: missing column" in fail.output


def test_pages_and_access(built) -> None:
    path, center, _ = built
    add_users(path)
    app = make_app(path)
    admin, viewer = TestClient(app), TestClient(app)
    assert login(admin, "admin").status_code == 303 and login(viewer, "viewer").status_code == 303
    y = AS_OF.year
    lists = {
        "roster": "SCHP",
        "roster?list=seen": "Synthetic",
        "roster?list=not-attributed": "Synthetic",
        "gaps": "SCHP",
        "estimate": "Synthetic",
        f"pdc?year={y}": "Synthetic",
    }  # member ids / names
    for url, marker in lists.items():
        page = admin.get(f"/vbp/{center}/{url}")
        assert page.status_code == 200 and marker in page.text, url
        assert viewer.get(f"/vbp/{center}/{url}").status_code == 403, url
    for client in (admin, viewer):
        over = client.get(f"/vbp?as_of={AS_OF}")
        assert over.status_code == 200 and "Sunrise" in over.text and "Synthetic" not in over.text
        cost = client.get(f"/vbp/{center}/cost?year={y}")
        assert cost.status_code == 200 and "PMPM" in cost.text
    assert admin.get(f"/vbp/{center}/roster?payer=nobody").status_code == 404
    submit = admin.get(f"/vbp/{center}/gaps.csv?agreement=submit").text.splitlines()
    assert (
        submit[0].startswith('"agreement"') and len(submit) > 1 and all('"submit"' in x for x in submit[1:])
    )
    assert viewer.get(f"/vbp/{center}/gaps.csv").status_code == 403
    # payer ZZ (test_cli_reports_and_bad_files) has one member: a viewer sees none of its months
    assert "<td>ZZ</td>" in admin.get(f"/vbp/{center}/cost?year={y}").text
    assert "<td>ZZ</td>" not in viewer.get(f"/vbp/{center}/cost?year={y}").text
    row = viewer.get(f"/vbp?as_of={AS_OF}").text.split("<td>ZZ</td>")[1].split("</tr>")[0]
    assert "<td>*</td>" in row and "<td>1</td>" not in row


def test_estimator_inputs_equal_measure_results(built) -> None:
    """The contract's met / denominator per measure, recounted from the roster CSV (spans, continuous
    enrollment) and measure_results directly."""
    from collections import defaultdict

    from chc_equity.vbp.roster import continuously_enrolled

    path, center, files = built
    rows = _csv(files / "roster.csv")
    con = connect(path, read_only=True)
    try:
        contract = store.contracts(con, center)[0]
        inputs, open_by, period, _ = report.contract_inputs(con, center, contract)
        pid_of = dict(
            con.execute("SELECT member_id, patient_id FROM vbp_roster WHERE center = ?", [center]).fetchall()
        )
        results = con.execute(
            """SELECT r.patient_id, a.cms_id, bool_or(r.numerator <> a.inverse) FROM measure_results r
                 JOIN (SELECT DISTINCT measure, cms_id, inverse FROM agg_measure) a USING (measure)
                WHERE r.center = ? AND r.group_id = 'Group_1' AND r.period_start = ? AND r.period_end = ?
                  AND r.denominator AND NOT r.denominator_exclusion AND NOT r.denominator_exception
                GROUP BY ALL""",
            [center, *period],
        ).fetchall()
    finally:
        con.close()
    spans = defaultdict(list)
    for r in rows:
        end = date.fromisoformat(r["attribution_end"]) if r["attribution_end"] else None
        spans[r["member_id"]].append((date.fromisoformat(r["attribution_start"]), end))
    enrolled = {pid_of[m] for m, s in spans.items() if pid_of.get(m) and continuously_enrolled(s, *period)}
    at_end = {
        pid_of[m]
        for m, s in spans.items()
        if pid_of.get(m) and any(a <= period[1] <= (b or period[1]) for a, b in s)
    }
    scored = 0
    for cm in contract.measures:
        eligible = enrolled if cm.continuous_enrollment else at_end
        den = {(p, met) for p, cms, met in results if cms == cm.source and p in eligible}
        assert (inputs.counts[cm.id].met, inputs.counts[cm.id].denominator) == (
            sum(1 for _, met in den if met),
            len(den),
        ), cm.id
        scored += len(den)
        assert {p for p, met in den if not met} == {p for p, ms in open_by.items() if cm.id in ms}
    assert scored > 0
    months = sum(
        1
        for s in spans.values()
        for m in range(1, 13)
        if any(a <= date(period[0].year, m, 1) <= (b or period[1]) for a, b in s)
    )
    assert inputs.member_months == months
