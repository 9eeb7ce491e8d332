"""The SQL ground the vocabulary stands on: the Measurement Period, the per-connection macros, quoting.

Conventions (checked against the official eCQM test cases):

- FHIR date/dateTime/instant text (kept verbatim by the views) is parsed by the ``fhir_ts`` macro to a
  ``TIMESTAMP`` normalised to UTC; a date without time is midnight. The Measurement Period is
  ``Interval[start 00:00:00.000, end 23:59:59.999]`` in UTC.
- "X day of" comparisons compare calendar dates (precision day), so they are done on ``DATE`` values
  (the ``fhir_date`` macro).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

FLAT = "flat"  # schema of the flat tables the views build

# Created per connection (TEMP) by the engine before any measure runs.
MACROS: tuple[str, ...] = (
    # FHIR date/dateTime/instant text -> TIMESTAMP (UTC). Partial dates (YYYY, YYYY-MM) take the first
    # instant of their precision; that is the low end of CQL's uncertainty interval.
    """CREATE OR REPLACE TEMP MACRO fhir_ts(s) AS CASE
         WHEN s IS NULL THEN NULL
         WHEN length(s) = 4 THEN make_timestamp(CAST(s AS INTEGER), 1, 1, 0, 0, 0)
         WHEN length(s) = 7 THEN make_timestamp(CAST(substr(s, 1, 4) AS INTEGER),
                                                CAST(substr(s, 6, 2) AS INTEGER), 1, 0, 0, 0)
         WHEN length(s) = 10 THEN CAST(TRY_CAST(s AS DATE) AS TIMESTAMP)
         ELSE timezone('UTC', TRY_CAST(s AS TIMESTAMPTZ))
       END""",
    "CREATE OR REPLACE TEMP MACRO fhir_date(s) AS CAST(fhir_ts(s) AS DATE)",
    # CQL AgeInYearsAt / years between: whole years completed.
    "CREATE OR REPLACE TEMP MACRO years_between(a, b) AS date_sub('year', CAST(a AS DATE), CAST(b AS DATE))",
    "CREATE OR REPLACE TEMP MACRO months_between(a, b) AS "
    "date_sub('month', CAST(a AS DATE), CAST(b AS DATE))",
)


@dataclass(frozen=True)
class Period:
    """The Measurement Period (calendar dates, inclusive)."""

    start: date
    end: date

    @property
    def start_ts(self) -> str:
        return f"TIMESTAMP '{self.start.isoformat()} 00:00:00'"

    @property
    def end_ts(self) -> str:
        return f"TIMESTAMP '{self.end.isoformat()} 23:59:59.999'"

    @property
    def start_date(self) -> str:
        return f"DATE '{self.start.isoformat()}'"

    @property
    def end_date(self) -> str:
        return f"DATE '{self.end.isoformat()}'"

    @property
    def span(self) -> Period:
        """Every period the run evaluates, as one period: for a single-period run, the period itself
        (see :attr:`PeriodColumns.span`)."""
        return self

    @property
    def ends(self) -> Period:
        """The days the run's periods end on, first to last: for a single-period run, its end day."""
        return Period(self.end, self.end)


@dataclass(frozen=True)
class PeriodColumns:
    """The Measurement Period as columns of a row of periods (alias ``alias``), not literals.

    A measure rendered with it evaluates every period of a series in one statement: the series engine
    (:mod:`chc_equity.measures.series`) joins its SQL laterally to a table of periods with columns
    ``start_date``, ``end_date`` (DATE), ``start_ts``, ``end_ts`` (TIMESTAMP, the same instants as
    :class:`Period`'s). It has the SQL properties of :class:`Period` and nothing else: a measure that
    computed with the period's Python dates could not be evaluated for a column, and fails loudly.
    """

    alias: str = "mp__"
    periods: tuple[Period, ...] = ()  # the periods of the series (their rows' values), for the spans

    @property
    def span(self) -> Period:
        """The literal period from the series' first start to its last end.

        What a measure says of one subject without reading the Measurement Period (an encounter's
        blood-pressure readings, say) can be computed once for every subject the span may need
        (e.g. every encounter ending in it) and then filtered by each period: equal to computing it
        per period, at the cost of one. A single-period run's span is its period (:attr:`Period.span`).
        """
        return Period(min(p.start for p in self._periods()), max(p.end for p in self._periods()))

    @property
    def ends(self) -> Period:
        """The days the series' periods end on, first to last (as :attr:`Period.ends`): e.g. the
        children who turn 2 by the end of some period are those 2 at the last end and at most 2 at the
        first."""
        return Period(min(p.end for p in self._periods()), max(p.end for p in self._periods()))

    def _periods(self) -> tuple[Period, ...]:
        if not self.periods:
            raise AttributeError("PeriodColumns without its periods: no span to compute once for")
        return self.periods

    @property
    def start_ts(self) -> str:
        return f"{self.alias}.start_ts"

    @property
    def end_ts(self) -> str:
        return f"{self.alias}.end_ts"

    @property
    def start_date(self) -> str:
        return f"{self.alias}.start_date"

    @property
    def end_date(self) -> str:
        return f"{self.alias}.end_date"


# What a measure's SQL may take the Measurement Period as: literals (one period) or columns (a series).
MeasurementPeriod = Period | PeriodColumns


def sql_str(value: str) -> str:
    """A SQL string literal (the one quoting function of the measure engine)."""
    return "'" + value.replace("'", "''") + "'"


def day(text: str) -> str:
    """FHIR date/dateTime text expression -> SQL ``DATE`` (CQL ``date from``, day precision)."""
    return f"fhir_date({text})"
