"""CQL library ``CumulativeMedicationDuration`` (6.0.000): ``medicationRequestPeriod()`` in SQL.

Only what the measures use: the period a single MedicationRequest covers. It is computed for every
MedicationRequest once (``ctx.shared(cmd.medication_request_period)``)
as ``(center, id, patient_id, period_start DATE, period_end DATE)``; requests whose period is null in
CQL get no row.

The arithmetic is the CQL's, including its edge cases (they decide test outcomes):

- ``dosesPerDay = Coalesce(ToDaily(frequency, period), Count(timeOfDay), 1.0)``: ``Count`` of an absent
  list is 0, not null, so without a frequency the doses per day are the number of times of day (often
  0), and the quantity-based supply then divides by zero, i.e. is null;
- ``singleton from dosageInstruction``: more than one dosage has no single dose (treated as absent);
- ``startDate + Quantity(totalDaysSupplied - 1, 'day')`` adds whole days (the fraction is truncated).
"""

from __future__ import annotations

from chc_equity.measures.engine import Context

# CMD ToDaily(frequency, period): multiplier of frequency / period.value, by period unit.
_PER_DAY = {
    "h": "24.0", "hour": "24.0", "hours": "24.0",
    "min": "24.0 * 60", "minute": "24.0 * 60", "minutes": "24.0 * 60",
    "s": "24.0 * 3600", "second": "24.0 * 3600", "seconds": "24.0 * 3600",
    "d": "1.0", "day": "1.0", "days": "1.0",
    "wk": "1.0 / 7", "week": "1.0 / 7", "weeks": "1.0 / 7",
    "mo": "1.0 / 30", "month": "1.0 / 30", "months": "1.0 / 30",
    "a": "1.0 / 365", "year": "1.0 / 365", "years": "1.0 / 365",
}

# `convert <duration> to days` (UCUM definite durations).
_DAYS = {
    "d": "1.0", "day": "1.0", "days": "1.0",
    "wk": "7.0", "week": "7.0", "weeks": "7.0",
    "h": "1.0 / 24", "hour": "1.0 / 24", "hours": "1.0 / 24",
    "min": "1.0 / 1440", "s": "1.0 / 86400",
    "mo": "30.4375", "month": "30.4375", "months": "30.4375",
    "a": "365.25", "year": "365.25", "years": "365.25",
}


def _case(unit: str, table: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{u}' THEN {factor}" for u, factor in table.items())
    return f"(CASE {unit} {whens} END)"


def medication_request_period(ctx: Context) -> str:
    """``MedicationRequest.medicationRequestPeriod()`` for every MedicationRequest with a known period."""
    del ctx  # the period does not depend on the Measurement Period
    supply_unit = "coalesce(r.expected_supply_duration_code, r.expected_supply_duration_unit)"
    return f"""
-- CQL (CumulativeMedicationDuration): define fluent function medicationRequestPeriod
WITH dosage AS (
  -- singleton from R.dosageInstruction (several dosages: no single dosage)
  SELECT center, id, any_value(d) AS d FROM flat.medication_request_dosage d
  GROUP BY center, id HAVING count(*) = 1
),
terms AS (
  SELECT r.center, r.id, r.patient_id,
         coalesce(d.d.frequency_max, d.d.frequency) AS frequency,
         d.d.period AS period_value, d.d.period_unit AS period_unit,
         coalesce(d.d.dose_range_high_value, d.d.dose_quantity_value) AS dose,
         CASE WHEN d.d.time_of_day IS NULL OR d.d.time_of_day = '' THEN 0
              ELSE len(string_split(d.d.time_of_day, ',')) END AS times_of_day,
         d.d.bounds_period_start, d.d.bounds_period_end,
         r.expected_supply_duration_value * {_case(supply_unit, _DAYS)} AS days_supply,
         r.dispense_quantity_value AS quantity,
         coalesce(r.number_of_repeats_allowed, 0) AS refills,
         coalesce(fhir_date(d.d.bounds_period_start), fhir_date(r.authored_on),
                  fhir_date(r.validity_period_start)) AS start_date
  FROM flat.medication_request r
  LEFT JOIN dosage d ON d.center = r.center AND d.id = r.id
),
per_day AS (
  SELECT *,
         coalesce(frequency * (1.0 / period_value) * {_case("period_unit", _PER_DAY)}, times_of_day)
           AS doses_per_day
  FROM terms
),
supplied AS (
  SELECT *,
         coalesce(days_supply,
                  CASE WHEN dose * doses_per_day <> 0 THEN quantity / (dose * doses_per_day) END)
           * (1 + refills) AS total_days_supplied
  FROM per_day
)
SELECT center, id, patient_id, start_date AS period_start,
       CASE WHEN total_days_supplied IS NOT NULL
            THEN (start_date + to_days(CAST(trunc(total_days_supplied - 1) AS INTEGER)))::DATE
            ELSE fhir_date(bounds_period_end) END AS period_end
FROM supplied
WHERE start_date IS NOT NULL AND (total_days_supplied IS NOT NULL OR bounds_period_end IS NOT NULL)
"""
