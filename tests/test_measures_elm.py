"""The ELM compiler (chc_equity.measures.elm): each supported ELM node translated on a tiny warehouse
with hand-computed results, the clear error for an unsupported node, and the compiled measures the
compiler fully supports at 100 % of the official 2026 test cases."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from chc_equity.measures.elm.compiler import Compiler, Unsupported
from chc_equity.measures.elm.library import Package
from chc_equity.measures.elm.measure import PATIENTS, prepare
from chc_equity.measures.vocabulary import Period
from conftest import shared_dir

SYS = "{urn:hl7-org:elm-types:r1}"
FHIR = "{http://hl7.org/fhir}"
QICORE = "http://hl7.org/fhir/us/qicore/StructureDefinition/"
VS = "http://example.org/ValueSet/office"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
PERIOD = Period(__import__("datetime").date(2026, 1, 1), __import__("datetime").date(2026, 12, 31))

# --- ELM builders (the JSON the CQL-to-ELM translator writes) ------------------------------------------


def lit(value, t="Integer"):
    return {"type": "Literal", "valueType": SYS + t, "value": str(value)}


def ref(name, lib=None):
    node = {"type": "ExpressionRef", "name": name}
    return {**node, "libraryName": lib} if lib else node


def prop(path, scope=None, source=None):
    node = {"type": "Property", "path": path}
    if scope:
        node["scope"] = scope
    if source:
        node["source"] = source
    return node


def helper(name, operand):
    return {"type": "FunctionRef", "libraryName": "FHIRHelpers", "name": name, "operand": [operand]}


def op(kind, *operands, **extra):
    return {"type": kind, "operand": list(operands), **extra}


def un(kind, operand, **extra):
    """A unary operator (its ``operand`` is one node, not a list)."""
    return {"type": kind, "operand": operand, **extra}


def retrieve(resource, codes=None, code_property="type"):
    node = {"type": "Retrieve", "dataType": FHIR + resource}
    if codes:
        node.update(codes=codes, codeProperty=code_property)
    return node


def query(alias, source, where=None, relationship=(), ret=None, sort=None):
    node = {
        "type": "Query",
        "source": [{"alias": alias, "expression": source}],
        "relationship": list(relationship),
    }
    if where:
        node["where"] = where
    if ret:
        node["return"] = {"expression": ret}
    if sort:
        node["sort"] = {"by": [sort]}
    return node


MP = {"type": "ParameterRef", "name": "Measurement Period"}
ENCOUNTERS = query(
    "E",
    retrieve("Encounter", {"type": "ValueSetRef", "name": "Office Visit"}),
    op("Equal", helper("ToString", prop("status", "E")), lit("finished", "String")),
)


def period_of(alias):
    return helper("ToInterval", prop("period", alias))


# --- the tiny warehouse ----------------------------------------------------------------------------------

ENCOUNTER_ROWS = [  # patient, id, status, type code, period start, period end
    ("p1", "e1", "finished", "OV", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00Z"),
    ("p2", "e2", "finished", "OV", "2025-12-31T10:00:00Z", "2026-01-02T11:00:00Z"),  # spans the start
    ("p2", "e3", "cancelled", "OV", "2026-05-01", "2026-05-01"),
    ("p3", "e4", "finished", "XX", "2026-06-01", "2026-06-01"),  # not in the value set
    ("p4", "e5", "finished", "OV", "2026-12-31T20:00:00Z", None),  # open-ended: ends never
]
OBSERVATION_ROWS = [  # patient, id, code, effective (choice)
    ("p1", "o1", "BMI", {"effectiveDateTime": "2026-03-01T10:30:00Z"}),
    ("p2", "o2", "BMI", {"effectivePeriod": {"start": "2026-01-03", "end": "2026-01-04"}}),
    ("p3", "o3", "BMI", {"effectiveDateTime": "2027-01-01"}),
    ("p1", "o4", "HR", {"effectiveDateTime": "2026-02-01T09:00:00Z"}),  # p1's earlier observation
]
BIRTH = {"p1": "2000-06-15", "p2": "1960-01-01", "p3": "2010-12-31", "p4": None}


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = tiny_warehouse()
    yield c
    c.close()


def tiny_warehouse() -> duckdb.DuckDBPyConnection:
    """A new connection holding the tiny warehouse (the ``con`` fixture's, for a test that changes it)."""
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute("CREATE TABLE resources (center VARCHAR, type VARCHAR, id VARCHAR, resource JSON)")
    c.execute("CREATE SCHEMA flat")
    for table in ("patient", "encounter", "observation"):
        c.execute(f"CREATE TABLE flat.{table} (center VARCHAR, id VARCHAR, patient_id VARCHAR)")
    for pid, birth in BIRTH.items():
        res = {"resourceType": "Patient", "id": pid, **({"birthDate": birth} if birth else {})}
        c.execute("INSERT INTO resources VALUES ('c', 'Patient', ?, ?)", [pid, json.dumps(res)])
        c.execute("INSERT INTO flat.patient VALUES ('c', ?, ?)", [pid, pid])
    for pid, eid, status, code, start, end in ENCOUNTER_ROWS:
        period = {"start": start, **({"end": end} if end else {})}
        res = {
            "resourceType": "Encounter",
            "id": eid,
            "status": status,
            "period": period,
            "type": [{"coding": [{"system": SNOMED, "code": code}]}],
        }
        c.execute("INSERT INTO resources VALUES ('c', 'Encounter', ?, ?)", [eid, json.dumps(res)])
        c.execute("INSERT INTO flat.encounter VALUES ('c', ?, ?)", [eid, pid])
    for pid, oid, code, effective in OBSERVATION_ROWS:
        res = {
            "resourceType": "Observation",
            "id": oid,
            "status": "final",
            "code": {"coding": [{"system": SNOMED, "code": code}]},
            **effective,
        }
        c.execute("INSERT INTO resources VALUES ('c', 'Observation', ?, ?)", [oid, json.dumps(res)])
        c.execute("INSERT INTO flat.observation VALUES ('c', ?, ?)", [oid, pid])
    c.execute("CREATE TABLE valueset_codes AS SELECT ? AS valueset, ? AS system, 'OV' AS code", [VS, SNOMED])
    prepare(c)
    c.execute(
        f"CREATE TEMP TABLE {PATIENTS} AS SELECT p.center, p.id AS patient_id, r.resource AS res "
        "FROM flat.patient p JOIN resources r ON r.id = p.id AND r.type = 'Patient'"
    )
    return c


CODES = (  # the codes library T declares (CQL Code equality compares every element)
    {"name": "BMI code", "id": "BMI", "codeSystem": {"name": "SNOMED"}},
    {"name": "BMI shown", "id": "BMI", "display": "Body mass index", "codeSystem": {"name": "SNOMED"}},
    {"name": "BMI too", "id": "BMI", "codeSystem": {"name": "SNOMED"}},
    {"name": "BMI elsewhere", "id": "BMI", "codeSystem": {"name": "LOINC", "libraryName": "Common"}},
)


def library(tmp: Path, defines: dict[str, dict], functions: tuple[dict, ...] = ()) -> Package:
    """A package of one library ``T`` holding ``defines`` (and the FHIRHelpers and Common it includes)."""
    patient = {"type": "SingletonFrom", "operand": retrieve("Patient")}
    defines = {"Patient": patient, **defines}
    statements = [{"name": n, "context": "Patient", "expression": e} for n, e in defines.items()]
    includes = [
        {"localIdentifier": "FHIRHelpers", "path": "FHIRHelpers", "version": "4"},
        {"localIdentifier": "Common", "path": "Common", "version": "1"},
    ]
    lib = {
        "library": {
            "identifier": {"id": "T", "version": "1"},
            "includes": {"def": includes},
            "valueSets": {"def": [{"name": "Office Visit", "id": VS}]},
            "codeSystems": {"def": [{"name": "SNOMED", "id": SNOMED}]},
            "codes": {"def": list(CODES)},
            "statements": {"def": statements + list(functions)},
        }
    }
    loinc = {"def": [{"name": "LOINC", "id": LOINC}]}
    common = {"identifier": {"id": "Common", "version": "1"}, "codeSystems": loinc}
    (tmp / "T.json").write_text(json.dumps(lib))
    helpers = {"identifier": {"id": "FHIRHelpers", "version": "4"}}
    (tmp / "FHIRHelpers.json").write_text(json.dumps({"library": helpers}))
    (tmp / "Common.json").write_text(json.dumps({"library": common}))
    return Package(tmp)


def evaluate(con, tmp: Path, expression: dict, functions: tuple[dict, ...] = ()) -> dict[str, object]:
    """Compile ``define "X": expression`` and return each patient's value (a list: sorted values)."""
    package = library(tmp, {"X": expression}, functions)
    compiler = Compiler(package, (PERIOD.start_ts, PERIOD.end_ts))
    define = compiler.define(package.library("T"), "X")
    for d in compiler.order:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {d.table} AS {d.sql}")
    rows = con.execute(f"SELECT patient_id, v FROM {define.table}").fetchall()
    if define.result.is_list:
        out: dict[str, object] = {p: [] for p in BIRTH}
        for patient, value in rows:
            out[patient].append(value)
        return {p: sorted(v, key=str) for p, v in out.items()}
    return dict(rows)


# --- one test per ELM node --------------------------------------------------------------------------------


def test_retrieve_by_value_set_and_query_where(con, tmp_path):
    """[Encounter: "Office Visit"] E where E.status = 'finished': the value set, then the status."""
    got = evaluate(con, tmp_path, query("E", ENCOUNTERS, ret=helper("ToString", prop("id", "E"))))
    assert got == {"p1": ["e1"], "p2": ["e2"], "p3": [], "p4": ["e5"]}


def test_exists_and_count(con, tmp_path):
    assert evaluate(con, tmp_path, un("Exists", ENCOUNTERS)) == {
        "p1": True,
        "p2": True,
        "p3": False,
        "p4": True,
    }
    count = {"type": "Count", "source": retrieve("Encounter")}
    assert evaluate(con, tmp_path, count) == {"p1": 1, "p2": 2, "p3": 1, "p4": 1}


def test_retrieve_by_direct_code(con, tmp_path):
    codes = {"type": "ToList", "operand": {"type": "CodeRef", "name": "BMI code"}}
    got = evaluate(con, tmp_path, un("Exists", retrieve("Observation", codes, "code")))
    assert got == {"p1": True, "p2": True, "p3": True, "p4": False}


def test_included_in_day_of_measurement_period(con, tmp_path):
    """period during day of MP: e2 starts before it, e5 has no end (closed null end: unbounded)."""
    during = op("IncludedIn", period_of("E"), MP, precision="Day")
    got = evaluate(con, tmp_path, un("Exists", query("E", ENCOUNTERS, during)))
    assert got == {"p1": True, "p2": False, "p3": False, "p4": False}


def test_overlaps_day_with_unbounded_end(con, tmp_path):
    """Interval[2026-12-31T20:00, null] overlaps day of MP (a closed null end is the end of time)."""
    overlaps = op("Overlaps", period_of("E"), MP, precision="Day")
    got = evaluate(con, tmp_path, un("Exists", query("E", ENCOUNTERS, overlaps)))
    assert got == {"p1": True, "p2": True, "p3": False, "p4": True}


def test_in_open_and_closed_boundaries(con, tmp_path):
    """5 in Interval[1, 5] true; in Interval[1, 5) false; in Interval[1, null) unknown (null)."""

    def ivl(high, high_closed):
        node = {"type": "Interval", "low": lit(1), "lowClosed": True, "highClosed": high_closed}
        node["high"] = lit(high) if high is not None else {"type": "Null", "resultTypeName": SYS + "Integer"}
        return node

    assert set(evaluate(con, tmp_path, op("In", lit(5), ivl(5, True))).values()) == {True}
    assert set(evaluate(con, tmp_path, op("In", lit(5), ivl(5, False))).values()) == {False}
    assert set(evaluate(con, tmp_path, op("In", lit(5), ivl(None, False))).values()) == {None}


def ivl(low, high, low_closed=True, high_closed=True, t="Integer"):
    """Interval[low, high] of literals (None: a null boundary)."""

    def point(v):
        if v is None:
            return {"type": "Null", "resultTypeName": SYS + t}
        return v if isinstance(v, dict) else lit(v, t)

    return {
        "type": "Interval",
        "low": point(low),
        "high": point(high),
        "lowClosed": low_closed,
        "highClosed": high_closed,
    }


def dt(day, hour):
    """The ELM of DateTime(2026, 3, day, hour)."""
    return {
        "type": "DateTime",
        **{k: lit(v) for k, v in (("year", 2026), ("month", 3), ("day", day), ("hour", hour))},
    }


def test_query_over_a_null_source_is_null(con, tmp_path):
    """``(X) d return ...`` over a single null X is null, not the return evaluated with d = null (CQL,
    FHIR-40225): QICoreCommon's prevalenceInterval() of a resource with no abatement and no active
    status would otherwise be Interval[null, null), which starts at the minimum (2025 CMS135
    "DENOMFail-EFLT40Obsv1MinAfterEncEdge")."""

    def single(source):
        return {
            "type": "Query",
            "source": [{"alias": "d", "expression": source}],
            "relationship": [],
            "return": {"expression": ivl({"type": "AliasRef", "name": "d"}, None, high_closed=False)},
        }

    assert value(con, tmp_path, single({"type": "Null", "resultTypeName": SYS + "Integer"})) is None
    assert value(con, tmp_path, single(lit(3))) == {"lo": 3, "hi": None, "lc": True, "hc": False}


def value(con, tmp_path, expression, functions=()):
    """The one value every patient gets for a patient-independent expression."""
    values = list(evaluate(con, tmp_path, expression, functions).values())
    assert all(v == values[0] for v in values)
    return values[0]


@pytest.mark.parametrize(
    ("a", "b", "before", "after"),
    [
        (ivl(1, 5), ivl(3, 8), True, False),  # starts first and overlaps
        (ivl(3, 8), ivl(1, 5), False, True),  # ends last and overlaps
        (ivl(1, 8), ivl(3, 5), True, True),  # contains the other
        (ivl(3, 5), ivl(3, 8), False, False),  # same start: not before
        (ivl(1, 3), ivl(3, 8), True, False),  # meets on the closed point 3
        (ivl(1, 3, high_closed=False), ivl(3, 8), False, False),  # [1, 3) ends at 2: no overlap
        (ivl(1, 2), ivl(4, 8), False, False),  # disjoint
        (ivl(None, 5), ivl(3, 8), True, False),  # closed null low: the minimum
        (ivl(None, 5, low_closed=False), ivl(3, 8), None, False),  # open null low: unknown start
    ],
)
def test_overlaps_before_and_after(con, tmp_path, a, b, before, after):
    assert value(con, tmp_path, op("OverlapsBefore", a, b)) is before
    assert value(con, tmp_path, op("OverlapsAfter", a, b)) is after


def test_overlaps_before_at_day_precision(con, tmp_path):
    """Same day, different hours: at day precision the starts are equal, so not "overlaps before"."""
    a = ivl(dt(1, 8), dt(5, 0), t="DateTime")
    b = ivl(dt(1, 10), dt(9, 0), t="DateTime")
    assert value(con, tmp_path, op("OverlapsBefore", a, b)) is True
    assert value(con, tmp_path, op("OverlapsBefore", a, b, precision="Day")) is False


@pytest.mark.parametrize(
    ("a", "b", "before", "after"),
    [
        (ivl(1, 2), ivl(3, 4), True, False),
        (ivl(3, 4), ivl(1, 2), False, True),
        (ivl(1, 3), ivl(3, 4), False, False),  # they share 3
        (ivl(1, 3, high_closed=False), ivl(3, 4), True, False),  # [1, 3) ends at 2
        (lit(2), ivl(3, 4), True, False),  # a point before an interval
        (ivl(1, 2), lit(2), False, False),  # an interval ending at the point
        (ivl(1, 2), lit(3), True, False),
        (ivl(5, 6), lit(3), False, True),
        (ivl(1, None, high_closed=False), ivl(5, 6), None, False),  # unknown end
    ],
)
def test_before_and_after_of_intervals(con, tmp_path, a, b, before, after):
    assert value(con, tmp_path, op("Before", a, b)) is before
    assert value(con, tmp_path, op("After", a, b)) is after


def test_before_of_intervals_at_day_precision(con, tmp_path):
    a = ivl(dt(1, 8), dt(1, 9), t="DateTime")
    b = ivl(dt(1, 10), dt(2, 0), t="DateTime")
    assert value(con, tmp_path, op("Before", a, b)) is True
    assert value(con, tmp_path, op("Before", a, b, precision="Day")) is False


def test_contains_of_interval_and_list(con, tmp_path):
    """Interval[1, 5) contains 5 false, contains 4 true; {1, 2} contains 2 true."""
    assert value(con, tmp_path, op("Contains", ivl(1, 5, high_closed=False), lit(5))) is False
    assert value(con, tmp_path, op("Contains", ivl(1, 5, high_closed=False), lit(4))) is True
    assert value(con, tmp_path, op("Contains", ivl(1, None, high_closed=False), lit(4))) is None
    listing = {"type": "List", "element": [lit(1), lit(2)]}
    assert value(con, tmp_path, op("Contains", listing, lit(2))) is True
    assert value(con, tmp_path, op("Contains", listing, lit(3))) is False


def test_expand_of_integer_intervals(con, tmp_path):
    """expand { Interval[1, 3], Interval[2, 5) } return end of X: the unit intervals 1..4, distinct."""
    listing = {"type": "List", "element": [ivl(1, 3), ivl(2, 5, high_closed=False)]}
    end = un("End", {"type": "AliasRef", "name": "X"})
    got = evaluate(con, tmp_path, query("X", {"type": "Expand", "operand": [listing]}, ret=end))
    assert set(map(tuple, got.values())) == {(1, 2, 3, 4)}


def test_any_true_and_all_true(con, tmp_path):
    """AnyTrue ignores nulls and is false for an empty list; AllTrue ignores nulls, true when empty."""
    t, f = lit("true", "Boolean"), lit("false", "Boolean")
    null = {"type": "Null", "resultTypeName": SYS + "Boolean"}

    def of(*items):
        return {"type": "List", "element": list(items)}

    cases = [((t, f), True, False), ((f, null), False, False), ((t, null), True, True), ((), False, True)]
    for items, any_true, all_true in cases:
        assert value(con, tmp_path, {"type": "AnyTrue", "source": of(*items)}) is any_true
        assert value(con, tmp_path, {"type": "AllTrue", "source": of(*items)}) is all_true


def test_age_at_start_of_period_and_date_arithmetic(con, tmp_path):
    """AgeInYearsAt(date from start of MP); start of MP - 1 year."""
    birth = helper("ToDate", prop("birthDate", source=ref("Patient")))
    age = op(
        "CalculateAgeAt",
        birth,
        {"type": "DateFrom", "operand": {"type": "Start", "operand": MP}},
        precision="Year",
    )
    assert evaluate(con, tmp_path, age) == {"p1": 25, "p2": 66, "p3": 15, "p4": None}
    year_before = op(
        "Subtract", {"type": "Start", "operand": MP}, {"type": "Quantity", "value": 1, "unit": "year"}
    )
    value = set(evaluate(con, tmp_path, year_before).values())
    assert {str(v) for v in value} == {"2025-01-01 00:00:00"}


def test_with_and_without_such_that(con, tmp_path):
    """Encounters with / without an Observation on the same day."""
    obs = retrieve("Observation")
    same_day = op(
        "SameAs",
        helper("ToDateTime", prop("effective", "O")),
        {"type": "Start", "operand": period_of("E")},
        precision="Day",
    )
    # effective is a choice: only dateTime values compare here (a Period gives null: no match)
    same_day["operand"][0] = {
        "type": "As",
        "asType": SYS + "DateTime",
        "operand": helper("ToValue", prop("effective", "O")),
    }
    with_ = {"type": "With", "alias": "O", "expression": obs, "suchThat": same_day}
    without = {**with_, "type": "Without"}
    ids = helper("ToString", prop("id", "E"))
    assert evaluate(con, tmp_path, query("E", ENCOUNTERS, relationship=[with_], ret=ids)) == {
        "p1": ["e1"],
        "p2": [],
        "p3": [],
        "p4": [],
    }
    assert evaluate(con, tmp_path, query("E", ENCOUNTERS, relationship=[without], ret=ids)) == {
        "p1": [],
        "p2": ["e2"],
        "p3": [],
        "p4": ["e5"],
    }


def test_choice_is_and_as(con, tmp_path):
    """Observation.effective: dateTime or Period (FHIRHelpers.ToValue, then Is / As)."""
    value = helper("ToValue", prop("effective", "O"))
    is_period = {
        "type": "Is",
        "isTypeSpecifier": {
            "type": "IntervalTypeSpecifier",
            "pointType": {"type": "NamedTypeSpecifier", "name": SYS + "DateTime"},
        },
        "operand": value,
    }
    got = evaluate(con, tmp_path, un("Exists", query("O", retrieve("Observation"), is_period)))
    assert got == {"p1": False, "p2": True, "p3": False, "p4": False}


def test_is_a_resource_type_reads_its_resource_type(con, tmp_path):
    """``Event is AllergyIntolerance`` where Event is a Choice<AllergyIntolerance, Condition> operand
    (2025 CMS145): true only for a resource of that type, so a Condition takes the Condition branch."""

    def is_type(resource):
        spec = {"type": "NamedTypeSpecifier", "name": FHIR + resource}
        return {"type": "Is", "isTypeSpecifier": spec, "operand": {"type": "AliasRef", "name": "O"}}

    for resource, want in (("Observation", True), ("Condition", False)):
        got = evaluate(con, tmp_path, un("Exists", query("O", retrieve("Observation"), is_type(resource))))
        assert got == {"p1": want, "p2": want, "p3": want, "p4": False}


def test_this_query_over_a_repeating_element_is_a_list(tmp_path):
    """``E.type.coding`` through a list-valued element: the translator writes ``(E.type) $this where
    $this.coding is not null return $this.coding``, with no result types; a ``$this`` source is a list
    by construction, so every item counts, not the first (2025 CMS135 reads
    ``MedicationRequest.dosageInstruction.timing.repeat.bounds`` of three dosage instructions)."""
    db = tiny_warehouse()
    try:
        types = [{"coding": [{"system": SNOMED, "code": c}]} for c in ("OV", "XX")]
        res = {"resourceType": "Encounter", "id": "e9", "status": "finished", "type": types}
        db.execute("INSERT INTO resources VALUES ('c', 'Encounter', 'e9', ?)", [json.dumps(res)])
        db.execute("INSERT INTO flat.encounter VALUES ('c', 'e9', 'p3')")
        this = {
            "type": "Query",
            "source": [{"alias": "$this", "expression": prop("type", "E")}],
            "relationship": [],
            "where": un("Not", un("IsNull", prop("coding", "$this"))),
            "return": {"expression": prop("coding", "$this")},
        }
        is_e9 = op("Equal", helper("ToString", prop("id", "E")), lit("e9", "String"))
        got = evaluate(
            db, tmp_path, query("E", retrieve("Encounter"), is_e9, ret={"type": "Count", "source": this})
        )
        assert got["p3"] == [2]
    finally:
        db.close()


def test_last_of_sorted_query(con, tmp_path):
    """Last(E sort by start of period): the latest encounter's id."""
    sort = {
        "type": "ByExpression",
        "direction": "asc",
        "expression": {
            "type": "Start",
            "operand": helper("ToInterval", {"type": "IdentifierRef", "name": "period"}),
        },
    }
    last = {"type": "Last", "source": query("E", retrieve("Encounter"), sort=sort)}
    got = evaluate(con, tmp_path, helper("ToString", prop("id", source=last)))
    assert got == {"p1": "e1", "p2": "e3", "p3": "e4", "p4": "e5"}


def test_sort_by_choice_element_of_the_row(con, tmp_path):
    """First(Observation sort by (effective as DateTime) asc / desc): ``sort by`` reads the choice
    element ``effective`` of the row being sorted (an IdentifierRef under FHIRHelpers.ToValue)."""

    def first(direction):
        key = {
            "type": "As",
            "asType": SYS + "DateTime",
            "operand": helper("ToValue", {"type": "IdentifierRef", "name": "effective"}),
        }
        sort = {"type": "ByExpression", "direction": direction, "expression": key}
        src = {"type": "First", "source": query("O", retrieve("Observation"), sort=sort)}
        return evaluate(con, tmp_path, helper("ToString", prop("id", source=src)))

    assert first("asc") == {"p1": "o4", "p2": "o2", "p3": "o3", "p4": None}
    assert first("desc") == {"p1": "o1", "p2": "o2", "p3": "o3", "p4": None}


def test_instance_of_quantity(con, tmp_path):
    """System.Quantity { value: 2.5, unit: 'mg' } (CumulativeMedicationDuration's Quantity function):
    a Quantity that compares with another of the same unit; other classes stay unsupported."""

    def quantity(v, unit):
        elements = [{"name": "value", "value": lit(v, "Decimal")}]
        if unit:
            elements.append({"name": "unit", "value": lit(unit, "String")})
        return {"type": "Instance", "classType": SYS + "Quantity", "element": elements}

    assert value(con, tmp_path, quantity(2.5, "mg")) == {"value": 2.5, "unit": "mg"}
    assert value(con, tmp_path, quantity(3, None)) == {"value": 3.0, "unit": "1"}
    assert value(con, tmp_path, op("Less", quantity(2.5, "mg"), quantity(3, "mg"))) is True
    assert value(con, tmp_path, op("Less", quantity(3, "mg"), quantity(3, "mg"))) is False
    code = {"type": "Instance", "classType": SYS + "Code", "element": []}
    with pytest.raises(Unsupported, match="Instance of Code"):
        evaluate(con, tmp_path, code)


def test_convert_quantity_between_ucum_units(con, tmp_path):
    """convert 2 'wk' to 'd' = 14 'd'; 36 h = 1.5 d; 1 'mo' = 30.4375 d (UCUM's month); 250 mg = 0.25 g;
    units of different dimensions (mg to d) or unknown ones give null, never a guessed factor."""

    def convert(v, unit, to):
        q = {"type": "Quantity", "value": v, "unit": unit}
        return op("ConvertQuantity", q, lit(to, "String"))

    assert value(con, tmp_path, convert(2, "wk", "d")) == {"value": 14.0, "unit": "d"}
    assert value(con, tmp_path, convert(36, "h", "d")) == {"value": 1.5, "unit": "d"}
    assert value(con, tmp_path, convert(1, "mo", "d")) == {"value": 30.4375, "unit": "d"}
    assert value(con, tmp_path, convert(250, "mg", "g")) == {"value": 0.25, "unit": "g"}
    assert value(con, tmp_path, convert(30, "days", "d")) == {"value": 30.0, "unit": "d"}
    assert value(con, tmp_path, convert(1, "mg", "d")) is None
    assert value(con, tmp_path, convert(1, "{tbl}", "d")) is None


def test_quantities_compare_after_conversion_and_incomparable_units_give_null(con, tmp_path):
    """1 'g' > 500 'mg' and 1 'kg' = 1000 'g' (one dimension: converted, then compared); 25 'kg/m2' >
    85 '%' is null, not an error (CQL: quantities whose units do not convert are incomparable; the
    2026 CMS69 compiled on a generated network stopped on BMI percentiles in % before)."""

    def q(v, unit):
        return {"type": "Quantity", "value": v, "unit": unit}

    assert value(con, tmp_path, op("Greater", q(1, "g"), q(500, "mg"))) is True
    assert value(con, tmp_path, op("Less", q(1, "g"), q(500, "mg"))) is False
    assert value(con, tmp_path, op("Equal", q(1, "kg"), q(1000, "g"))) is True
    assert value(con, tmp_path, op("NotEqual", q(1, "kg"), q(1000, "g"))) is False
    assert value(con, tmp_path, op("GreaterOrEqual", q(30, "kg/m2"), q(30, "kg/m2"))) is True
    assert value(con, tmp_path, op("Greater", q(3, "{score}"), q(2, "{score}"))) is True  # same unit
    assert value(con, tmp_path, op("Greater", q(25, "kg/m2"), q(85, "%"))) is None
    assert value(con, tmp_path, op("Equal", q(2, "kg/m2"), q(2, "%"))) is None
    assert value(con, tmp_path, op("Less", q(2, "{tbl}"), q(2, "mg"))) is None


def test_value_of_a_quantity_is_a_decimal(con, tmp_path):
    """``q.value / 2`` where the ELM gives the property no result type (2025 CumulativeMedicationDuration's
    ``quantity.value / (dose.value * dosesPerDay)``): a Quantity's value is a Decimal, its unit a String."""
    q = {"type": "Quantity", "value": 3, "unit": "mg"}
    assert value(con, tmp_path, op("Divide", prop("value", source=q), lit(2))) == 1.5
    assert value(con, tmp_path, op("Equal", prop("unit", source=q), lit("mg", "String"))) is True


def test_collapse_merges_overlapping_and_meeting_intervals(con, tmp_path):
    """collapse {[1,3], [2,5], [9,10], [6,6], null, [12,13]}: [1,3] and [2,5] overlap, [6,6] meets
    [1,5] (6 is 5's successor), [9,10] and [12,13] stand alone (11 lies between); nulls are dropped;
    an empty list collapses to an empty list."""
    items = [ivl(1, 3), ivl(2, 5), ivl(9, 10), ivl(6, 6), {"type": "Null"}, ivl(12, 13)]
    got = value(con, tmp_path, op("Collapse", {"type": "List", "element": items}, {"type": "Null"}))
    assert sorted((i["lo"], i["hi"]) for i in got) == [(1, 6), (9, 10), (12, 13)]
    none = query("I", {"type": "List", "element": [ivl(1, 2)]}, where=lit("false", "Boolean"))
    assert value(con, tmp_path, op("Collapse", none, {"type": "Null"})) == []


def test_arithmetic_promotes_integer_to_decimal_and_divides_by_zero_to_null(con, tmp_path):
    """3 * 4 = 12 (Integer); 1 + 2.5 = 3.5; 2 * (24.0 / 16) = 3.0; 7 / 2 = 3.5 (Divide is Decimal);
    1 / 0 is null."""
    assert value(con, tmp_path, op("Multiply", lit(3), lit(4))) == 12
    assert value(con, tmp_path, op("Add", lit(1), lit(2.5, "Decimal"))) == 3.5
    per_day = op("Multiply", lit(2), op("Divide", lit(24.0, "Decimal"), lit(16)))
    assert value(con, tmp_path, per_day) == 3.0
    assert value(con, tmp_path, op("Divide", lit(7), lit(2))) == 3.5
    assert value(con, tmp_path, op("Divide", lit(1), lit(0))) is None


def test_three_valued_logic(con, tmp_path):
    """null and false = false, null or true = true, not null = null."""
    null = {"type": "Null", "resultTypeName": SYS + "Boolean"}
    assert set(evaluate(con, tmp_path, op("And", null, lit("false", "Boolean"))).values()) == {False}
    assert set(evaluate(con, tmp_path, op("Or", null, lit("true", "Boolean"))).values()) == {True}
    assert set(evaluate(con, tmp_path, un("Not", null)).values()) == {None}


def test_function_ref_is_inlined_from_its_elm(con, tmp_path):
    """A fluent library function (Status.isEncounterPerformed-like) compiled from its own ELM body."""
    fn = {
        "type": "FunctionDef",
        "name": "isFinished",
        "operand": [{"name": "Enc"}],
        "expression": query(
            "X",
            {"type": "OperandRef", "name": "Enc"},
            op("Equal", helper("ToString", prop("status", "X")), lit("finished", "String")),
        ),
    }
    call = {"type": "FunctionRef", "name": "isFinished", "operand": [retrieve("Encounter")]}
    got = evaluate(con, tmp_path, {"type": "Count", "source": call}, functions=(fn,))
    assert got == {"p1": 1, "p2": 1, "p3": 1, "p4": 1}


def test_value_of_one_type_passed_as_a_choice_operand(con, tmp_path):
    """f(c Choice<DateTime, Interval<Quantity>>) called with a DateTime (QICoreCommon toInterval called
    by earliest() on a date): ``c as DateTime`` is the value, ``c is Interval<DateTime>`` false and
    ``c.low as Quantity`` null (the other alternative's property)."""
    choice = {
        "type": "ChoiceTypeSpecifier",
        "choice": [
            {"type": "NamedTypeSpecifier", "name": SYS + "DateTime"},
            {
                "type": "IntervalTypeSpecifier",
                "pointType": {"type": "NamedTypeSpecifier", "name": SYS + "Quantity"},
            },
        ],
    }
    c = {"type": "OperandRef", "name": "c"}
    interval = {
        "type": "IntervalTypeSpecifier",
        "pointType": {"type": "NamedTypeSpecifier", "name": SYS + "DateTime"},
    }
    bodies = {
        "asDateTime": {"type": "As", "asType": SYS + "DateTime", "operand": c},
        "isInterval": {"type": "Is", "isTypeSpecifier": interval, "operand": c},
        "lowQuantity": {"type": "As", "asType": SYS + "Quantity", "operand": prop("low", source=c)},
    }
    fns = tuple(
        {
            "type": "FunctionDef",
            "name": n,
            "operand": [{"name": "c", "operandTypeSpecifier": choice}],
            "expression": b,
        }
        for n, b in bodies.items()
    )

    def call(name):
        return value(con, tmp_path, {"type": "FunctionRef", "name": name, "operand": [dt(1, 8)]}, fns)

    assert str(call("asDateTime")) == "2026-03-01 08:00:00"
    assert call("isInterval") is False
    assert call("lowQuantity") is None


def test_overload_chosen_by_its_declared_fhir_type(con, tmp_path):
    """f(Procedure) and f(AllergyIntolerance) are both FHIR JSON to the compiler: the call's signature
    picks the overload by its full type name; a call no overload fits is an error, never a guess."""

    def f(resource, result):
        spec = {"type": "NamedTypeSpecifier", "name": FHIR + resource}
        return {
            "type": "FunctionDef",
            "name": "f",
            "operand": [{"name": "x", "operandTypeSpecifier": spec}],
            "expression": lit(result),
        }

    fns = (f("Procedure", 1), f("AllergyIntolerance", 2))

    def call(resource):
        signature = [{"type": "NamedTypeSpecifier", "name": FHIR + resource}]
        return {"type": "FunctionRef", "name": "f", "operand": [retrieve(resource)], "signature": signature}

    assert value(con, tmp_path, call("AllergyIntolerance"), fns) == 2
    assert value(con, tmp_path, call("Procedure"), fns) == 1
    with pytest.raises(Unsupported, match="ambiguous overload of T.f"):
        evaluate(con, tmp_path, call("Observation"), fns)


def _encounter_function(name: str, body: dict) -> dict:
    spec = {"type": "NamedTypeSpecifier", "name": FHIR + "Encounter"}
    return {
        "type": "FunctionDef",
        "name": name,
        "operand": [{"name": "Enc", "operandTypeSpecifier": spec}],
        "expression": body,
    }


def test_function_of_one_resource_is_computed_once_per_resource(con, tmp_path):
    """f(Enc Encounter): ``Enc X let s: X.status, label: if s = 'finished' then X.id else 'open'
    return label`` (a let chain, as CumulativeMedicationDuration's medicationRequestPeriod) reads no
    patient context, so it is one relation over every Encounter (elm_fn_t_f) that each call reads by the
    argument's id; g, which reads the patient's birth date, stays inlined at its call."""
    x = {"type": "AliasRef", "name": "X"}
    status = helper("ToString", prop("status", source=x))
    ident = helper("ToString", prop("id", source=x))
    s = {"type": "QueryLetRef", "name": "s"}
    label = {
        "type": "If",
        "condition": op("Equal", s, lit("finished", "String")),
        "then": ident,
        "else": lit("open", "String"),
    }
    body = query("X", {"type": "OperandRef", "name": "Enc"}, ret={"type": "QueryLetRef", "name": "label"})
    body["let"] = [{"identifier": "s", "expression": status}, {"identifier": "label", "expression": label}]
    birth = helper("ToString", prop("birthDate", source=ref("Patient")))
    g_body = query("X", {"type": "OperandRef", "name": "Enc"}, ret=birth)
    fns = (_encounter_function("f", body), _encounter_function("g", g_body))

    def calls(name):
        call = {"type": "FunctionRef", "name": name, "operand": [{"type": "AliasRef", "name": "E"}]}
        return query("E", retrieve("Encounter"), ret=call)

    package = library(tmp_path, {"X": calls("f"), "Y": calls("g")}, fns)
    compiler = Compiler(package, (PERIOD.start_ts, PERIOD.end_ts))
    compiler.define(package.library("T"), "X")
    compiler.define(package.library("T"), "Y")
    assert [d.table for d in compiler.order if d.table.startswith("elm_fn_")] == ["elm_fn_t_f"]
    assert evaluate(con, tmp_path, calls("f"), fns) == {
        "p1": ["e1"],
        "p2": ["e2", "open"],
        "p3": ["e4"],
        "p4": ["e5"],
    }
    assert evaluate(con, tmp_path, calls("g"), fns) == {
        "p1": ["2000-06-15"],
        "p2": ["1960-01-01"],
        "p3": ["2010-12-31"],
        "p4": [None],
    }


def test_compiler_macros_read_their_argument_once():
    """DuckDB copies a macro's argument into every use: a macro reading its JSON argument four times,
    nested three deep, copied the innermost expression 64 times (seconds to bind and optimise one
    CumulativeMedicationDuration statement). Each compiler macro binds its first argument once."""
    import re

    from chc_equity.measures.elm.compiler import MACROS

    bound = 0
    for macro in MACROS:
        name, params, body = re.match(
            r"CREATE OR REPLACE TEMP MACRO (\w+)\(([^)]*)\) AS (.*)", macro, re.S
        ).groups()
        first = params.split(",")[0].strip()
        if body.startswith("list_transform(["):
            assert len(re.findall(rf"\b{first}\b", body)) == 1, name
            bound += 1
    assert bound >= 10


def test_value_of_an_absent_choice_element_is_null(con, tmp_path):
    """``O.value is null`` for Observations without a value (FHIRHelpers.ToValue of an absent element is
    null, not a choice with no alternative set: CMS122 'result is null' numerator)."""
    no_value = un("IsNull", helper("ToValue", prop("value", "O")))
    got = evaluate(con, tmp_path, {"type": "Count", "source": query("O", retrieve("Observation"), no_value)})
    assert got == {"p1": 2, "p2": 1, "p3": 1, "p4": 0}


def test_code_equality_compares_every_element(con, tmp_path):
    """CQL Code equality (tuple equality, as the reference engine): same code, system, version and
    display; an element null on both sides is equal, on one side unknown (null)."""

    def code(name):
        return {"type": "CodeRef", "name": name}

    assert value(con, tmp_path, op("Equal", code("BMI code"), code("BMI too"))) is True
    assert value(con, tmp_path, op("Equal", code("BMI code"), code("BMI elsewhere"))) is False
    assert value(con, tmp_path, op("Equal", code("BMI code"), code("BMI shown"))) is None
    assert value(con, tmp_path, op("NotEqual", code("BMI code"), code("BMI elsewhere"))) is True
    loinc = value(con, tmp_path, code("BMI elsewhere"))  # a code system of an included library
    assert (loinc["system"], loinc["code"]) == (LOINC, "BMI")


def test_list_of_codes_contains_by_code_equality(con, tmp_path):
    """``(O.code as Concept).codes contains "BMI code"`` (CMS1056's 'Full Body'): the data's coding
    (SNOMED BMI, no display) equals "BMI code" but not "BMI shown" (a display on one side only: unknown,
    so not contained) nor "BMI elsewhere" (LOINC)."""

    def has(name):
        codes = prop(
            "codes",
            source={
                "type": "As",
                "asType": SYS + "Concept",
                "operand": helper("ToConcept", prop("code", "O")),
            },
        )
        contains = op("Contains", codes, {"type": "CodeRef", "name": name})
        return evaluate(con, tmp_path, un("Exists", query("O", retrieve("Observation"), contains)))

    assert has("BMI code") == {"p1": True, "p2": True, "p3": True, "p4": False}
    assert set(has("BMI shown").values()) == {False}
    assert set(has("BMI elsewhere").values()) == {False}


def test_list_membership_is_never_null(con, tmp_path):
    """``x in {...}``: true when an element equals x; a null x is in a list holding a null; otherwise
    false, never null (so ``not (x in list)`` is true for a null x)."""
    null = {"type": "Null", "resultTypeName": SYS + "String"}

    def strings(*items):
        return {"type": "List", "element": [lit(i, "String") if i else null for i in items]}

    assert value(con, tmp_path, op("In", lit("a", "String"), strings("a", "b"))) is True
    assert value(con, tmp_path, op("In", lit("c", "String"), strings("a", None))) is False
    assert value(con, tmp_path, op("In", null, strings("a", "b"))) is False
    assert value(con, tmp_path, op("In", null, strings("a", None))) is True
    assert value(con, tmp_path, un("Not", op("In", null, strings("a")))) is True


def test_first_of_fhir_date_times_is_a_date_time(con, tmp_path):
    """First(O.effective sort ascending) where the ELM gives no result type but its signature
    List<System.DateTime> (2025 CMS646 ``First(dosageTiming.event sort ascending)``): a CQL DateTime
    (then ``is DateTime`` / toInterval() work on it), not a FHIR JSON string."""
    events = query("O", retrieve("Observation"), ret=prop("effective", "O"))
    events["sort"] = {"by": [{"type": "ByDirection", "direction": "ascending"}]}
    element = {"type": "NamedTypeSpecifier", "name": SYS + "DateTime"}
    first = {
        "type": "First",
        "source": events,
        "signature": [{"type": "ListTypeSpecifier", "elementType": element}],
    }
    got = evaluate(con, tmp_path, first)
    assert {p: str(v) if v else v for p, v in got.items()} == {
        "p1": "2026-02-01 09:00:00",
        "p2": None,  # an effectivePeriod: no dateTime
        "p3": "2027-01-01 00:00:00",
        "p4": None,
    }


def test_overload_chosen_by_the_profile_its_cql_declares(con, tmp_path):
    """isOrdered(MedicationRequest MedicationRequest) and isOrdered(MedicationRequest
    MedicationNotRequested) (2025 AHAOverall): the ELM types both operands FHIR.MedicationRequest, so
    the overload is the one whose CQL (kept in the annotation) declares the profile of the argument's
    retrieve (its templateId); with no CQL text to read, the call stays ambiguous (an error)."""

    def g(profile, result, annotated=True):
        spec = {"type": "NamedTypeSpecifier", "name": FHIR + "Observation"}
        text = f"define fluent function g(x {profile}): {result}"
        fn = {
            "type": "FunctionDef",
            "name": "g",
            "operand": [{"name": "x", "operandTypeSpecifier": spec}],
            "expression": lit(result),
        }
        return (
            {**fn, "annotation": [{"type": "Annotation", "s": {"s": [{"value": [text]}]}}]}
            if annotated
            else fn
        )

    def call(template):
        source = {**retrieve("Observation"), "templateId": QICORE + template}
        signature = [{"type": "NamedTypeSpecifier", "name": FHIR + "Observation"}]
        return {"type": "FunctionRef", "name": "g", "operand": [source], "signature": signature}

    fns = (g("Observation", 1), g("SimpleObservation", 2))
    assert value(con, tmp_path, call("qicore-simple-observation"), fns) == 2
    assert value(con, tmp_path, call("qicore-observation"), fns) == 1
    with pytest.raises(Unsupported, match="ambiguous overload of T.g"):
        evaluate(
            con,
            tmp_path,
            call("qicore-simple-observation"),
            (g("Observation", 1, False), g("SimpleObservation", 2, False)),
        )


# --- lists of FHIR elements (CQMCommon.claimDiagnosis), resources and tuples ------------------------------

CLAIM_ENCOUNTERS = {"p1": "ea", "p2": "eb", "p3": "ec", "p4": "ed"}


def diagnosis(sequence, code=None, reference=None, on_admission=None, principal=False):
    out = {"sequence": sequence}
    if code:
        out["diagnosisCodeableConcept"] = {"coding": [{"system": SNOMED, "code": code}]}
    if reference:
        out["diagnosisReference"] = {"reference": reference}
    if on_admission:
        out["onAdmission"] = {"coding": [{"code": on_admission}]}
    if principal:
        out["type"] = [{"coding": [{"code": "principal"}]}]
    return out


CLAIMS = [  # patient, claim id, status, items (encounter, diagnosisSequence), diagnoses
    (
        "p1",
        "c1",
        "active",
        [("ea", [1, 2])],
        [diagnosis(1, "D1", on_admission="Y"), diagnosis(2, reference="Condition/x"), diagnosis(3, "D3")],
    ),
    ("p2", "c2", "active", [("elsewhere", [1])], [diagnosis(1, "D1")]),
    ("p3", "c3", "cancelled", [("ec", [1])], [diagnosis(1, "D1")]),
    # two principal diagnoses of one encounter (singleton from them is an error); an item without
    # diagnosisSequence (the translator's `not IsNull(...)` of a query over an absent element)
    (
        "p4",
        "c4",
        "active",
        [("ed", [1, 2]), ("ed", None)],
        [diagnosis(1, "D1", principal=True), diagnosis(2, "D2", principal=True)],
    ),
]
INR = {"p1": 3.5, "p2": 2.0}  # Observation valueQuantity in unit '{INR}' (a UCUM annotation: unit 1)


@pytest.fixture(scope="module")
def claims_con() -> duckdb.DuckDBPyConnection:
    """Patients p1-p4 with one Encounter each, Claims whose items reference them, INR Observations."""
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute("CREATE TABLE resources (center VARCHAR, type VARCHAR, id VARCHAR, resource JSON)")
    c.execute("CREATE SCHEMA flat")
    for table in ("patient", "encounter", "claim", "observation"):
        c.execute(f"CREATE TABLE flat.{table} (center VARCHAR, id VARCHAR, patient_id VARCHAR)")

    def add(kind, pid, res):
        c.execute("INSERT INTO resources VALUES ('c', ?, ?, ?)", [kind, res["id"], json.dumps(res)])
        c.execute(f"INSERT INTO flat.{kind.lower()} VALUES ('c', ?, ?)", [res["id"], pid])

    for pid, eid in CLAIM_ENCOUNTERS.items():
        add("Patient", pid, {"resourceType": "Patient", "id": pid})
        add("Encounter", pid, {"resourceType": "Encounter", "id": eid, "status": "finished"})
    for pid, cid, status, items, diagnoses in CLAIMS:
        item = [
            {
                "sequence": n,
                "encounter": [{"reference": f"Encounter/{e}"}],
                **({"diagnosisSequence": s} if s else {}),
            }
            for n, (e, s) in enumerate(items, start=1)
        ]
        claim = {"resourceType": "Claim", "id": cid, "status": status, "use": "claim", "item": item}
        add("Claim", pid, {**claim, "diagnosis": diagnoses})
    for pid, value in INR.items():
        quantity = {"value": value, "unit": "INR", "system": "http://unitsofmeasure.org", "code": "{INR}"}
        add(
            "Observation", pid, {"resourceType": "Observation", "id": f"inr-{pid}", "valueQuantity": quantity}
        )
    prepare(c)
    c.execute(
        f"CREATE TEMP TABLE {PATIENTS} AS SELECT p.center, p.id AS patient_id, r.resource AS res "
        "FROM flat.patient p JOIN resources r ON r.id = p.id AND r.type = 'Patient'"
    )
    yield c
    c.close()


def this_query(source, path, ret=None, where=True):
    """The translator's path over a repeating element: ``source $this where $this.path is not null
    return $this.path`` (or ``return ret``; no where clause when ``where`` is false)."""
    element = prop(path, source={"type": "AliasRef", "name": "$this"})
    node = {
        "type": "Query",
        "source": [{"alias": "$this", "expression": source}],
        "return": {"distinct": False, "expression": ret or element},
    }
    return {**node, "where": un("Not", un("IsNull", ret or element))} if where else node


def references(refs, alias):
    """``refs.references(alias)``: some Reference's tail is the resource's id (QICoreCommon)."""
    tail = {
        "type": "Last",
        "source": {"type": "Split", "stringToSplit": prop("reference", "R"), "separator": lit("/", "String")},
    }
    return un("Exists", query("R", refs, op("Equal", tail, prop("id", alias))))


# CQMCommon 4.1.000 claimDiagnosis as the translator writes it: a query over one Encounter whose lets are
# lists (the claims, their items) and whose return is a list (the claims' diagnoses the items name).
CLAIM_DIAGNOSIS = {
    "type": "FunctionDef",
    "name": "claimDiagnosis",
    "operand": [{"name": "encounter"}],
    "expression": {
        "type": "Query",
        "source": [{"alias": "E", "expression": {"type": "OperandRef", "name": "encounter"}}],
        "let": [
            {
                "identifier": "claim",
                "expression": query(
                    "C",
                    retrieve("Claim"),
                    op(
                        "And",
                        op("Equal", helper("ToString", prop("status", "C")), lit("active", "String")),
                        un("Exists", query("I", prop("item", "C"), references(prop("encounter", "I"), "E"))),
                    ),
                ),
            },
            {
                "identifier": "claimItem",
                "expression": query(
                    "I",
                    un("Flatten", this_query({"type": "QueryLetRef", "name": "claim"}, "item")),
                    references(prop("encounter", "I"), "E"),
                ),
            },
        ],
        "relationship": [],
        "return": {
            "expression": query(
                "D",
                un("Flatten", this_query({"type": "QueryLetRef", "name": "claim"}, "diagnosis")),
                op(
                    "In",
                    prop("value", source=prop("sequence", "D")),
                    un(
                        "Flatten",
                        this_query(
                            {"type": "QueryLetRef", "name": "claimItem"},
                            "diagnosisSequence",
                            this_query(
                                prop("diagnosisSequence", source={"type": "AliasRef", "name": "$this"}),
                                "value",
                                where=False,
                            ),
                        ),
                    ),
                ),
            )
        },
    },
}


def per_encounter(expression_of_e):
    """``[Encounter] E return <expression of E>``."""
    return query("E", retrieve("Encounter"), ret=expression_of_e)


def claim_diagnosis_of_e():
    return {"type": "FunctionRef", "name": "claimDiagnosis", "operand": [{"type": "AliasRef", "name": "E"}]}


def test_query_over_one_encounter_with_list_lets_returns_a_list(claims_con, tmp_path):
    """claimDiagnosis: p1's claim item names diagnoses 1 and 2 (not 3); p2's claim is for another
    encounter, p3's is cancelled; p4's two items name 1 and 2 (the second item has no diagnosisSequence)."""
    count = {"type": "Count", "source": claim_diagnosis_of_e()}
    got = evaluate(claims_con, tmp_path, per_encounter(count), functions=(CLAIM_DIAGNOSIS,))
    assert got == {"p1": [2], "p2": [0], "p3": [0], "p4": [2]}
    # ToValue(D.diagnosis) as FHIR.Reference is the choice element diagnosisReference (p1's diagnosis 2)
    as_reference = {
        "type": "As",
        "asType": FHIR + "Reference",
        "operand": helper("ToValue", prop("diagnosis", "D")),
    }
    reference = helper("ToString", prop("reference", source=as_reference))
    got = evaluate(
        claims_con,
        tmp_path,
        per_encounter(un("Exists", query("D", claim_diagnosis_of_e(), ret=reference))),
        functions=(CLAIM_DIAGNOSIS,),
    )
    assert got == {"p1": [True], "p2": [False], "p3": [False], "p4": [True]}


def test_singleton_from_more_than_one_element_is_an_error(claims_con, tmp_path):
    """singleton from: p1's diagnosis 1 is its only principal one (none: null); p4 has two, which CQL
    makes a run-time error, never a value chosen."""
    on_admission = un(
        "SingletonFrom",
        query("D", claim_diagnosis_of_e(), op("Equal", prop("value", source=prop("sequence", "D")), lit(1))),
    )
    first = per_encounter(un("Not", un("IsNull", on_admission)))
    got = evaluate(claims_con, tmp_path, first, functions=(CLAIM_DIAGNOSIS,))
    assert got == {"p1": [True], "p2": [False], "p3": [False], "p4": [True]}
    every = per_encounter(un("SingletonFrom", claim_diagnosis_of_e()))
    with pytest.raises(duckdb.Error, match=r"singleton from: more than one element at T\.X"):
        evaluate(claims_con, tmp_path, every, functions=(CLAIM_DIAGNOSIS,))


def test_is_null_of_a_query_over_an_untyped_fhir_element(claims_con, tmp_path):
    """An ELM without result types (CMS646 ``getStagingProcedure() is not null``, a query over
    ``partOf``): over an array (Claim.item) the query is a list, not null even when nothing matches;
    over one value (Claim.use) it is that value, null when the where clause drops it."""
    items = query("I", prop("item", "C"), op("Equal", prop("value", source=prop("sequence", "I")), lit(99)))
    got = evaluate(claims_con, tmp_path, query("C", retrieve("Claim"), ret=un("IsNull", items)))
    assert got == {"p1": [False], "p2": [False], "p3": [False], "p4": [False]}
    use = query(
        "U",
        prop("use", "C"),
        op("Equal", helper("ToString", {"type": "AliasRef", "name": "U"}), lit("x", "String")),
    )
    got = evaluate(claims_con, tmp_path, query("C", retrieve("Claim"), ret=un("IsNull", use)))
    assert got == {"p1": [True], "p2": [True], "p3": [True], "p4": [True]}


def test_quantity_in_an_annotation_unit_compares_with_a_number(claims_con, tmp_path):
    """INR > 3.0 (CMS190): ToQuantity(3.0) has unit '1', the observation's '{INR}' is a UCUM
    annotation, i.e. unit 1 too; p1's 3.5 is greater, p2's 2.0 not, p3 and p4 have none."""
    value = {"type": "As", "asType": SYS + "Quantity", "operand": helper("ToValue", prop("value", "O"))}
    greater = op("Greater", value, un("ToQuantity", lit(3.0, "Decimal")))
    got = evaluate(claims_con, tmp_path, query("O", retrieve("Observation"), ret=greater))
    assert got == {"p1": [True], "p2": [False], "p3": [], "p4": []}


def test_list_of_encounters_contains_an_encounter(con, tmp_path):
    """ "Finished office visits" contains E: CQL equality of resources (structural, as the reference
    engine's equalsDeep): e3 is cancelled and e4 not an office visit."""
    contains = op("Contains", ENCOUNTERS, {"type": "AliasRef", "name": "E"})
    got = evaluate(
        con, tmp_path, query("E", retrieve("Encounter"), contains, ret=helper("ToString", prop("id", "E")))
    )
    assert got == {"p1": ["e1"], "p2": ["e2"], "p3": [], "p4": ["e5"]}


def test_union_of_tuples_of_different_shapes_with_a_list_element(con, tmp_path):
    """{id, codes: E.type $this return ToConcept($this)} union {id, when: O.effective}: one list of
    tuples, every element present (null where a tuple lacks it); a tuple's list element reads back as
    a list (every type of the Encounter, not the first)."""
    codes = this_query(
        prop("type", "E"), "type", ret=helper("ToConcept", {"type": "AliasRef", "name": "$this"}), where=False
    )
    codes["source"][0]["expression"] = prop("type", "E")
    enc = query(
        "E",
        retrieve("Encounter"),
        ret={
            "type": "Tuple",
            "element": [
                {"name": "id", "value": helper("ToString", prop("id", "E"))},
                {"name": "codes", "value": codes},
            ],
        },
    )
    obs = query(
        "O",
        retrieve("Observation"),
        ret={
            "type": "Tuple",
            "element": [
                {"name": "id", "value": helper("ToString", prop("id", "O"))},
                {"name": "when", "value": prop("effective", "O")},
            ],
        },
    )
    both = op("Union", enc, obs)
    got = evaluate(con, tmp_path, query("U", both, ret=prop("id", "U")))
    assert got == {"p1": ["e1", "o1", "o4"], "p2": ["e2", "e3", "o2"], "p3": ["e4", "o3"], "p4": ["e5"]}
    count = {"type": "Count", "source": prop("codes", "U")}
    got = evaluate(con, tmp_path, query("U", both, op("Equal", count, lit(1)), ret=prop("id", "U")))
    assert got == {"p1": ["e1"], "p2": ["e2", "e3"], "p3": ["e4"], "p4": ["e5"]}


def test_unsupported_node_names_type_library_and_define(con, tmp_path):
    with pytest.raises(Unsupported, match=r"unsupported: Foo at T\.X"):
        evaluate(con, tmp_path, {"type": "Foo"})


def test_an_include_resolves_only_to_the_version_it_names(tmp_path):
    """An include of a version the package lacks is an error naming the version wanted, the versions
    present and what MANIFEST.tsv says; never another version of the library in its place."""
    from chc_equity.measures.elm.library import ElmError

    def write(file, name, version, includes=()):
        inc = [{"localIdentifier": n, "path": n, "version": v} for n, v in includes]
        lib = {"identifier": {"id": name, "version": version}, "includes": {"def": inc}}
        (tmp_path / file).write_text(json.dumps({"library": lib}))

    write("Q.json", "Q", "4")
    write("M.json", "M", "1", [("Q", "4")])
    write("N.json", "N", "1", [("Q", "3")])
    package = Package(tmp_path)
    package.load_includes(package.library("M"))
    assert package.library("Q", "4").version == "4"
    (tmp_path / "MANIFEST.tsv").write_text("library\tversion\tstatus\nQ\t3\tMISSING: no ELM\n")
    wanted = r"library missing: Q 3 not in .*present: Q.json \(version 4\)\); MANIFEST.tsv: MISSING"
    with pytest.raises(ElmError, match=wanted):
        package.load_includes(package.library("N"))
    write("Q-3.json", "Q", "3")  # now the include resolves
    assert Package(tmp_path).library("Q", "3").version == "3"


# --- official 2026 cases -----------------------------------------------------------------------------------

# The measures the compiler fully supports (docs/conformance.md, "ELM compiler").
SUPPORTED_2026 = (
    "CMS74FHIRDentalCariesPrevention",
    "CMS75FHIRChildrenDentalDecay",
    "CMS139FHIRFallRiskScreening",
    "CMS349FHIRHIVScreening",
    # the cheapest CumulativeMedicationDuration measure (medicationRequestPeriod as a per-resource relation)
    "CMS138FHIRTobaccoScrnCessation",
    # US Core vital-sign profile retrieves (pediatric BMI, height, weight: 5 CPU-s) and
    # ConditionProblemsHealthConcerns with the Encounter basis (11 CPU-s), both constrained by profile
    "CMS155FHIRWgtAssessCounseling",
    "CMS22FHIRPCSBPScreeningFollowUp",
)


def test_compiled_measures_agree_with_official_2026_cases(official_cases):
    """Compiled from ../shared/ecqm/elm, run on the session's official test warehouse: every population
    of every test patient as expected."""
    from chc_equity.measures.conformance import test_folder
    from chc_equity.measures.elm.conformance import check_compiled
    from chc_equity.measures.registry import all_measures

    ecqm, con = official_cases
    folders = {m.measure.cms_id: test_folder(ecqm, m).name for m in all_measures()}
    results = check_compiled(con, ecqm, SUPPORTED_2026, lambda n: f"bundle:{folders[n.split('FHIR')[0]]}/")
    for name, r in results.items():
        assert not r.error, f"{name}: {r.error}"
        assert r.compared > 0 and r.agreed == r.compared, f"{name}: {r.disagreements[:5]}"


# 2025 measures newly at 100 % of their official cases (docs/conformance.md, "Re-measured after the list
# step"); each loads only its own test folder (CMS826: 36 populations, about 10 CPU-s).
SUPPORTED_2025 = ("CMS826FHIRHHPI",)


@pytest.mark.parametrize("measure", SUPPORTED_2025)
def test_compiled_measures_agree_with_official_2025_cases(measure):
    """Compiled from ../shared/ecqm-2025/elm (CMS826: claimDiagnosis, list lets and Flatten), run on
    its own official test Bundles: every population of every test patient as expected."""
    from chc_equity.measures.elm.conformance import check_package

    result = check_package(shared_dir("ecqm-2025"), [measure])[measure]
    assert not result.error, result.error
    assert result.compared > 0 and result.agreed == result.compared, result.disagreements[:5]


def test_a_measure_whose_include_is_missing_names_it(tmp_path):
    """2025 CMS871 includes CumulativeMedicationDuration 5.0.000, which includes QICoreCommon 3.0.000:
    absent from the package, so compilation stops naming it (never QICoreCommon 4.0.000 instead)."""
    from chc_equity.measures.elm.conformance import PackageLayout
    from chc_equity.measures.elm.library import ElmError
    from chc_equity.measures.elm.measure import MeasureDef, compile_measure

    layout = PackageLayout(shared_dir("ecqm-2025"))
    measure = MeasureDef.read(layout.measures / "CMS871HHHyperFHIR.json")
    with pytest.raises(
        ElmError, match=r"library missing: QICoreCommon 3\.0\.000 .*QICoreCommon\.json \(version 4\.0\.000\)"
    ):
        compile_measure(measure, layout.elm, PERIOD)


def test_cli_compile_prints_or_saves_the_sql_or_names_the_unsupported_node(tmp_path):
    """`measures compile` compiles from ../shared/ecqm/elm: the defines' SQL (printed, or saved with
    --out), or exit 1 naming the node; --dialect other than duckdb is refused."""
    from typer.testing import CliRunner

    from chc_equity.cli import app
    from chc_equity.cli import measures as _measures  # noqa: F401  (registers `measures`)

    ecqm = shared_dir("ecqm")
    args = ["measures", "compile", "--package", str(ecqm), "--measure"]
    ok = CliRunner().invoke(app, [*args, "CMS75FHIRChildrenDentalDecay"])
    assert ok.exit_code == 0, ok.output
    assert "CREATE OR REPLACE TEMP TABLE elm_hospice_has_hospice_services AS" in ok.output
    assert "elm_cms75fhirchildrendentaldecay_numerator" in ok.output
    out = tmp_path / "cms75.sql"
    saved = CliRunner().invoke(app, [*args, "CMS75", "--out", str(out)])  # a CMS id names it too
    assert saved.exit_code == 0, saved.output
    assert out.read_text().strip() == ok.output.strip()
    other = CliRunner().invoke(app, [*args, "CMS75", "--dialect", "spark"])
    assert other.exit_code == 2 and "only duckdb" in other.output

    # a package whose measure needs an ELM node the compiler lacks: exit 1, naming node and define
    (tmp_path / "pkg" / "elm").mkdir(parents=True)
    (tmp_path / "pkg" / "measure").mkdir()
    library(tmp_path / "pkg" / "elm", {"Initial Population": {"type": "Foo", "locator": "3:1-3:9"}})
    population = {
        "code": {"coding": [{"code": "initial-population"}]},
        "criteria": {"expression": "Initial Population"},
    }
    measure = {
        "resourceType": "Measure",
        "name": "M",
        "library": ["http://x/Library/T|1"],
        "group": [{"population": [population]}],
    }
    (tmp_path / "pkg" / "measure" / "M.json").write_text(json.dumps(measure))
    bad = CliRunner().invoke(
        app, ["measures", "compile", "--package", str(tmp_path / "pkg"), "--measure", "M"]
    )
    assert bad.exit_code == 1
    assert "unsupported: Foo at T.Initial Population (line 3:1-3:9)" in bad.output
    episodes = CliRunner().invoke(app, [*args, "CMS177FHIRChildMDDSuicideAssmt"])  # Encounter basis
    assert episodes.exit_code == 0, episodes.output
    assert "elm_cms177fhirchildmddsuicideassmt_initial_population_episodes AS" in episodes.output
    (tmp_path / "basis" / "measure").mkdir(parents=True)
    (tmp_path / "basis" / "elm").mkdir()
    basis = {"url": "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-populationBasis"}
    xmeasure = {
        "name": "X",
        "library": ["http://x/Library/X"],
        "group": [{"extension": [{**basis, "valueCode": "Condition"}]}],
    }
    (tmp_path / "basis" / "measure" / "X.json").write_text(json.dumps(xmeasure))
    nobasis = CliRunner().invoke(
        app, ["measures", "compile", "--package", str(tmp_path / "basis"), "--measure", "X"]
    )
    assert nobasis.exit_code == 1
    assert "unsupported: population basis Condition at X" in nobasis.output
