"""The pediatric age bands, in SQL, in one place.

Ages are whole years at the period end, computed as the equity layer computes ``age_band`` (year
difference, minus one before the birthday), so a child's band and the equity layer's ``0-17`` agree.
"""

from __future__ import annotations

AGE_BANDS = ("0-2", "3-5", "6-11", "12-17")
ALL_AGES = "0-17"  # the band value of rows over every child


def birth_sql(birth_date: str) -> str:
    """A FHIR (possibly partial) birthDate text as a DATE (partial dates on the first of the month/year)."""
    return (
        f"TRY_CAST(CASE length({birth_date}) WHEN 4 THEN {birth_date} || '-01-01' "
        f"WHEN 7 THEN {birth_date} || '-01' ELSE left({birth_date}, 10) END AS DATE)"
    )


def age_sql(birth_date: str, day: str) -> str:
    """Whole years between a FHIR birthDate and the DATE expression ``day``."""
    b = birth_sql(birth_date)
    return (
        f"(year({day}) - year({b}) - CASE WHEN strftime({day}, '%m%d') < strftime({b}, '%m%d') "
        "THEN 1 ELSE 0 END)"
    )


def band_sql(age: str) -> str:
    """The band of an age in years; NULL for adults and unknown ages."""
    return (
        f"CASE WHEN {age} < 0 THEN NULL WHEN {age} <= 2 THEN '0-2' WHEN {age} <= 5 THEN '3-5' "
        f"WHEN {age} <= 11 THEN '6-11' WHEN {age} <= 17 THEN '12-17' END"
    )


def children_sql(flat: str, period_end: str, cf: str = "center IS NOT NULL") -> str:
    """``center, patient_id, age, age_band`` of every patient under 18 at ``period_end`` (a DATE literal)."""
    age = age_sql("p.birth_date", period_end)
    return f"""SELECT p.center, p.id AS patient_id, {age} AS age, {band_sql(age)} AS age_band
                 FROM {flat}.patient p
                WHERE p.{cf} AND {age} BETWEEN 0 AND 17"""
