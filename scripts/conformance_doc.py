"""Generate docs/conformance.md: agreement of every implemented eCQM with the official test cases.

    .venv/bin/python scripts/conformance_doc.py [--ecqm ../shared/ecqm] [--out docs/conformance.md]

Runs ``chc_equity.measures.conformance.check_measure`` for each measure (about two minutes on two cores)
and writes the table with the date of the run, so the document states what was measured, not claimed.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import date
from pathlib import Path

from chc_equity.measures.conformance import MeasureConformance, check_measure
from chc_equity.measures.registry import all_measures

REPO = Path(__file__).resolve().parents[1]

NOTES = """\
## How agreement is counted

`expected.csv` (extracted from the expected MeasureReport inside each test Bundle) has one row per
(test patient, group, population) with the expected count. `chc-equity measures evaluate` runs the
measure on the measure's test folder, each Bundle as its own data set, and a row agrees when our count
for that patient, group and population equals the expected count. Populations follow the eCQM counting
convention of the engine (`src/chc_equity/measures/engine.py`): an excluded or excepted patient still
counts in the denominator; the performance rate is numerator / (denominator - exclusions - exceptions).
Episode-of-care measures (CMS22, CMS177) count encounters, so an expected count can be above 1.

The same test patients also check the FHIR export: `tests/test_measures_report.py` compares every
individual MeasureReport we write with the expected MeasureReport in its Bundle, population by code.

## Strict profile rule (measures evaluate)

`measures evaluate` checks test content against its declared profiles (`--profiles strict`, the
default; `src/chc_equity/measures/evaluate.py`): a clinical resource that declares no QI-Core or US Core
profile in `meta.profile`, or only a misspelled one, is not data for a profile-based retrieve and is
dropped before the measures run. Patient, Practitioner, Organization, Location, Coverage, Medication and
similar non-clinical resources are kept whatever they declare. The official expectations need this:
CMS177 "IPFail-EncB4MP" carries an untagged Encounter in the period and expects no initial population;
CMS131 has a retinal exam whose profile URL is misspelled and expects it to be ignored. Production runs
(`measures run`) are lenient, because EHR exports rarely tag profiles; `--profiles lenient` gives the same
behaviour to `evaluate`.

## Stratifiers

Five measures declare stratifiers, each a Boolean CQL definition ("Stratification 1", ...) that the
engine writes into `measure_results.strata`; `summarize(..., strata=True)` and the summary
MeasureReports report each stratum. The expected MeasureReports carry strata too, but only part of that
content follows the CQL, so only that part is compared (`tests/test_measures_report.py`):

- CMS125, age 42-51 / 52-74 at the end of the period: compared, all agree.
- CMS155, age 3-11 / 12-17 at the end of the period (three groups): compared, all agree except
  "SDEPass-SDECoverage", a 5-year-old whom the content puts in no stratum.
- CMS130, age 46-49 / 50-75 at the end of the period: not comparable; the expected reports repeat
  populations (8 per stratum) and put 47- and 68-year-olds in both strata.
- CMS74, age 1-5 / 6-12 / 13-20 at the start of the period: not comparable; the Measure resource's three
  stratifiers all name "Initial Population" as criteria, so every expected stratum equals the initial
  population. The CQL's age bands are checked directly on synthetic data (`tests/test_measures_strata.py`).
- CMS159, age 12-17 / 18+ at the index assessment: not comparable; the CQL returns a list of Booleans and
  the content counts any non-empty list as true, so both expected strata equal the group. Our strata are
  checked against the test-case titles ("PopStrat1" / "PopStrat2") instead; one title
  ("IPPPopStrat2Pass-Patientis18") contradicts its own data (the patient is 17 at the index assessment).

## Deviations from the Measure resources

- Improvement notation: the CMS122 Measure resource says "increase", but its numerator is poor
  glycemic control (> 9 %), an inverse measure; our model and MeasureReports say "decrease".
"""


def _source() -> str:
    """The commit of the test content, from ../shared/ecqm/SOURCE.txt (or '' when absent)."""
    path = REPO.parent / "shared" / "ecqm" / "SOURCE.txt"
    if not path.exists():
        return ""
    match = re.search(r"test cases: commit ([0-9a-f]{40})", path.read_text())
    if not match:
        return ""
    return f"cqframework/dqm-content-qicore-2025 test cases at commit `{match.group(1)[:12]}`"


def render(results: list[tuple[str, str, MeasureConformance]], run_date: date, seconds: float) -> str:
    """The Markdown document for ``results`` (cms id, title, conformance), pure."""
    cases = sum(r.cases for _, _, r in results)
    compared = sum(r.compared for _, _, r in results)
    agreed = sum(r.agreed for _, _, r in results)
    full = sum(1 for _, _, r in results if r.compared and r.agreed == r.compared)
    lines = [
        "# eCQM conformance",
        "",
        "<!-- generated by scripts/conformance_doc.py; edit the script, not this file -->",
        "",
        f"Generated {run_date.isoformat()} in {seconds:.0f} s. "
        f"Source: {_source() or 'official eCQM test cases'} (`../shared/ecqm`, measurement period 2026).",
        "",
        f"**{full} of {len(results)} measures agree with every expected population**: {agreed:,} of "
        f"{compared:,} populations over {cases:,} test cases ({agreed / compared:.2%}).",
        "",
        "Regenerate: `.venv/bin/python scripts/conformance_doc.py` (the same check as",
        "`.venv/bin/pytest tests/test_measures_conformance.py -n 2`).",
        "",
        "| measure | title | test cases | populations compared | agreed | agreement |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for cms_id, title, r in results:
        lines.append(
            f"| {cms_id} | {title} | {r.cases} | {r.compared} | {r.agreed} | {r.agreement:.1%} |"
        )
    lines.append("")
    disagreements = [(cms_id, d) for cms_id, _, r in results for d in r.disagreements]
    if disagreements:
        lines += ["## Disagreements", ""]
        lines += [f"- {cms_id}: {d}" for cms_id, d in disagreements[:200]]
        lines.append("")
    return "\n".join(lines) + "\n" + NOTES


def _elm_section(path: Path) -> str:
    """The "ELM compiler" section scripts/elm_conformance.py wrote into ``path`` (kept as it is)."""
    begin, end = "<!-- elm-compiler:begin -->", "<!-- elm-compiler:end -->"
    text = path.read_text() if path.exists() else ""
    if begin not in text or end not in text:
        return ""
    return begin + text.split(begin, 1)[1].split(end, 1)[0] + end + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ecqm", type=Path, default=REPO.parent / "shared" / "ecqm")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "conformance.md")
    args = ap.parse_args()
    if not (args.ecqm / "expected.csv").exists():
        raise SystemExit(f"official test content not found under {args.ecqm}")
    started = time.perf_counter()
    results = []
    for module in all_measures():
        m = module.measure
        result = check_measure(args.ecqm, module)
        print(f"{m.cms_id}: {result.agreed}/{result.compared}")
        results.append((m.cms_id, m.title, result))
    text = render(results, date.today(), time.perf_counter() - started)
    elm = _elm_section(args.out)
    args.out.write_text(text + ("\n" + elm if elm else ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
