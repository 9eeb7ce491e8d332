"""The full assessment as an Excel workbook: scores by domain (with change), and every response.

Sheet "Scores": one row per domain and the overall score, with answered items, rater spread and the
change since the previous assessment. Sheet "Responses": one row per item and rater (level, its anchor
text, evidence link, note), plus a row for each unanswered item so the gaps show. Text cells go
through :func:`chc_equity.exports.set_cell` (a note starting with ``=`` is not run as a formula).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from io import BytesIO
from typing import Protocol

from openpyxl import Workbook
from openpyxl.styles import Font

from chc_equity.exports import set_cell
from chc_equity.improvement.assessment import AssessmentScore
from chc_equity.improvement.rubric import Rubric


class ResponseRow(Protocol):
    item_id: str
    rater: str
    level: int
    evidence_url: str | None
    note: str | None


def _row(ws, r: int, values: Sequence[object], bold: bool = False) -> None:
    for c, v in enumerate(values, start=1):
        cell = set_cell(ws, r, c, v)
        if bold:
            cell.font = Font(bold=True)


def assessment_workbook(
    rubric: Rubric,
    center: str,
    assessed_on: date,
    score: AssessmentScore,
    delta: Mapping[str, float | None],
    responses: Sequence[ResponseRow],
) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Scores"
    _row(ws, 1, [f"{rubric.title} ({rubric.key})"], bold=True)
    _row(ws, 2, ["Center", center, "Assessed on", assessed_on.isoformat()])
    _row(ws, 3, ["Raters", ", ".join(score.raters)])
    _row(ws, 5, ["Domain", "Score", "Items answered", "Items", "Rater spread", "Change"], bold=True)
    r = 6
    for d in score.domains:
        _row(ws, r, [d.title, d.score, d.answered, d.items, d.spread, delta.get(d.domain_id)])
        r += 1
    _row(ws, r, ["Overall", score.overall, None, None, None, delta.get("overall")], bold=True)
    rs = wb.create_sheet("Responses")
    _row(rs, 1, ["Domain", "Item", "Text", "Rater", "Level", "Anchor", "Evidence", "Note"], bold=True)
    by_item: dict[str, list[ResponseRow]] = {}
    for x in responses:
        by_item.setdefault(x.item_id, []).append(x)
    r = 2
    for d in rubric.domains:
        for item in d.items:
            for x in by_item.get(item.id) or [None]:  # type: ignore[list-item]
                if x is None:
                    _row(rs, r, [d.title, item.id, item.text, None, None, "not answered", None, None])
                else:
                    anchor = item.anchor(x.level)
                    _row(
                        rs, r, [d.title, item.id, item.text, x.rater, x.level, anchor, x.evidence_url, x.note]
                    )
                r += 1
    for sheet in (ws, rs):
        sheet.column_dimensions["A"].width = 40
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()
