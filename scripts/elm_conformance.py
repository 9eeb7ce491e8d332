"""Run the ELM compiler on measure packages' official test cases; write the "ELM compiler" section of
docs/conformance.md.

    .venv/bin/python scripts/elm_conformance.py [--package ../shared/ecqm-2025 --package ../shared/ecqm]
                                                 [--out docs/conformance.md]

Each package's measures are compiled from their ELM (never from the hand-written modules), run on the
package's test Bundles and compared with its ``expected.csv`` (``chc-equity measures elm-run`` prints
the same table). The section sits between markers that scripts/conformance_doc.py keeps.
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from chc_equity.measures.elm.conformance import check_package, markdown_table

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- elm-compiler:begin -->", "<!-- elm-compiler:end -->"

NOTES = """\
The compiler (`src/chc_equity/measures/elm/`, docs/architecture.md) translates ELM into set-based
SQL over the flat views and the raw `resources` JSON; an ELM node it cannot translate stops
compilation with `unsupported: <node> at <library>.<define> (line ...)`, so a measure is either
compiled from its published logic or reported as not supported, never silently approximated.
Episode population bases (Encounter, Procedure, Observation: a patient counts once per episode in
each population) and ratio / continuous-variable groups with their measure observations (one entry
per observed episode, compared with the expected entries as sorted values) are compiled
(`elm/episodes.py`)."""


def section(runs: list[tuple[Path, dict, float]], run_date: date) -> str:
    lines = [
        BEGIN,
        "## ELM compiler",
        "",
        f"Generated {run_date.isoformat()} by `scripts/elm_conformance.py`.",
        "",
    ]
    lines += [NOTES, ""]
    for package, results, seconds in runs:
        full = sum(1 for r in results.values() if not r.error and r.compared and r.agreed == r.compared)
        lines += [
            f"### `{package.name}` ({len(results)} measures, {seconds:.0f} s)",
            "",
            f"{full} measure(s) compiled from ELM agree with every expected population.",
            "",
            markdown_table(results),
            "",
        ]
        diffs = [(n, d) for n, r in results.items() for d in r.disagreements[:5]]
        if diffs:
            lines += ["Disagreements (first five per measure):", ""]
            lines += [f"- {n}: {d}" for n, d in diffs]
            lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


HAND_WRITTEN = "### Re-measured"  # subsections written by hand (measures run alone): kept on regeneration


def kept_subsections(old: str) -> str:
    """The hand-written ``### Re-measured ...`` subsections of the old section, in order."""
    kept, keep = [], False
    for line in old.splitlines():
        if line.startswith("### "):
            keep = line.startswith(HAND_WRITTEN)
        if keep:
            kept.append(line)
    return "\n".join(kept).strip("\n")


def replace_section(text: str, new: str) -> str:
    """``text`` with its ELM section replaced by ``new`` (appended when there is none); the old
    section's hand-written re-measurement subsections are kept at the end of the new one."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        old, tail = rest.split(END, 1)
        kept = kept_subsections(old)
        body = new.rstrip("\n")
        if kept:
            body = body[: -len(END)].rstrip("\n") + "\n\n" + kept + "\n\n" + END
        return head + body + tail
    return text.rstrip("\n") + "\n\n" + new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, action="append")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "conformance.md")
    args = ap.parse_args()
    packages = args.package or [REPO.parent / "shared" / "ecqm-2025", REPO.parent / "shared" / "ecqm"]
    runs = []
    for package in packages:
        if not (package / "expected.csv").exists():
            raise SystemExit(f"no expected.csv under {package}")
        started = time.perf_counter()
        results = check_package(package)
        runs.append((package, results, time.perf_counter() - started))
        for name, r in results.items():
            print(f"{package.name} {name}: {r.status}")
    args.out.write_text(replace_section(args.out.read_text(), section(runs, date.today())))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
