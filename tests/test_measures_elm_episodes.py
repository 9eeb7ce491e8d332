"""Episode-based compiled measures (chc_equity.measures.elm.episodes): population membership per
(patient, episode), the engine's scoring rules per episode, ratio and continuous-variable measure
observations, on the tiny warehouse of test_measures_elm with hand-computed counts."""

from __future__ import annotations

import json

from chc_equity.measures.elm.conformance import ElmConformance, compare, observation_values, population_counts
from chc_equity.measures.elm.measure import MeasureDef, compile_measure, run_compiled, run_observations
from test_measures_elm import (
    PERIOD,
    con,  # noqa: F401  (the tiny warehouse, a module fixture)
    dt,
    evaluate,
    helper,
    ivl,
    library,
    lit,
    op,
    prop,
    query,
    ref,
    retrieve,
    value,
)

CQFM = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/"
OFFICE = retrieve("Encounter", {"type": "ValueSetRef", "name": "Office Visit"})

# Office-visit encounters (any status): p1 e1; p2 e2, e3 (cancelled); p3 none (e4 is not an office
# visit); p4 e5.
DEFINES = {
    "Initial Population": OFFICE,
    "Denominator": ref("Initial Population"),
    "Denominator Exclusions": query(
        "E",
        ref("Initial Population"),
        op("Equal", helper("ToString", prop("status", "E")), lit("cancelled", "String")),
    ),
    "Numerator": query(
        "E", ref("Initial Population"), op("Equal", helper("ToString", prop("id", "E")), lit("e1", "String"))
    ),
    # a patient-level Boolean in an episode measure: every episode of a patient with a BMI observation
    "Denominator Exceptions": {"type": "Exists", "operand": retrieve("Observation")},
    # stratifiers: a patient-level Boolean (p1, p2, p3 have observations), a list of episodes (the
    # finished office visits e1, e2, e5) and a list of Booleans (one per office visit: finished?)
    "Stratification 1": {"type": "Exists", "operand": retrieve("Observation")},
    "Stratification 2": query(
        "E",
        ref("Initial Population"),
        op("Equal", helper("ToString", prop("status", "E")), lit("finished", "String")),
    ),
    "Stratification 3": {
        "type": "Query",
        "source": [{"alias": "E", "expression": ref("Initial Population")}],
        "relationship": [],
        "return": {
            "expression": op("Equal", helper("ToString", prop("status", "E")), lit("cancelled", "String"))
        },
    },
}
FINISHED = op(
    "Equal",
    helper("ToString", prop("status", source={"type": "OperandRef", "name": "Enc"})),
    lit("finished", "String"),
)
FUNCTIONS = (
    {
        "type": "FunctionDef",
        "name": "Denominator Observation",
        "operand": [{"name": "Enc"}],
        "expression": {"type": "If", "condition": FINISHED, "then": lit(1), "else": lit(0)},
    },
    {
        "type": "FunctionDef",
        "name": "Numerator Observation",
        "operand": [{"name": "Enc"}],
        "expression": lit(5),
    },
)


def population(code: str, expression: str, pid: str, **ext: str) -> dict:
    return {
        "id": pid,
        "code": {"coding": [{"code": code}]},
        "criteria": {"expression": expression},
        "extension": [{"url": CQFM + k, "valueString": v} for k, v in ext.items()],
    }


def measure_json(scoring: str, populations: list[dict], stratifiers: tuple[str, ...] = ()) -> dict:
    strata = [
        {"id": f"Stratification_1_{k}", "description": f"stratum {k}", "criteria": {"expression": name}}
        for k, name in enumerate(stratifiers, start=1)
    ]
    return {
        "resourceType": "Measure",
        "name": "EpisodeTest",
        "library": ["http://example.org/Library/T"],
        "group": [
            {
                "id": "Group_1",
                "extension": [
                    {"url": CQFM + "cqfm-populationBasis", "valueCode": "Encounter"},
                    {"url": CQFM + "cqfm-scoring", "valueCodeableConcept": {"coding": [{"code": scoring}]}},
                ],
                "population": populations,
                **({"stratifier": strata} if strata else {}),
            }
        ],
    }


def run(con, tmp_path, doc: dict):  # noqa: F811
    library(tmp_path, DEFINES, FUNCTIONS)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    compiled = compile_measure(MeasureDef.read(tmp_path / "m.json"), tmp_path, PERIOD)
    scored = run_compiled(con, compiled)
    return compiled, scored, run_observations(con, compiled)


def test_episode_proportion_counts_each_patients_encounters(con, tmp_path):  # noqa: F811
    """Each encounter is a subject; a patient's count is its encounters in the population. p2: e3 is
    excluded, e2 is an exception (p2 has an observation, e2 is not in the numerator)."""
    pops = [
        population("initial-population", "Initial Population", "InitialPopulation_1"),
        population("denominator", "Denominator", "Denominator_1"),
        population("denominator-exclusion", "Denominator Exclusions", "DenominatorExclusion_1"),
        population("numerator", "Numerator", "Numerator_1"),
        population("denominator-exception", "Denominator Exceptions", "DenominatorException_1"),
    ]
    compiled, scored, observed = run(con, tmp_path, measure_json("proportion", pops))
    assert {(r[7], r[5], r[6]) for r in scored} == {
        ("p1", "Encounter", "e1"),
        ("p2", "Encounter", "e2"),
        ("p2", "Encounter", "e3"),
        ("p4", "Encounter", "e5"),
    }
    counts = population_counts(scored, compiled)
    got = {
        p: tuple(
            counts.get(("Group_1", p, c), 0)
            for c in (
                "initial-population",
                "denominator",
                "denominator-exclusion",
                "numerator",
                "denominator-exception",
            )
        )
        for p in ("p1", "p2", "p3", "p4")
    }
    assert got == {"p1": (1, 1, 0, 1, 0), "p2": (2, 2, 1, 0, 1), "p3": (0, 0, 0, 0, 0), "p4": (1, 1, 0, 0, 0)}
    assert observed == []


def ratio_populations() -> list[dict]:
    """A ratio measure's populations with a denominator (Sum) and a numerator (Count) observation."""
    return [
        population("initial-population", "Initial Population", "InitialPopulation_1"),
        population("denominator", "Denominator", "Denominator_1"),
        population("denominator-exclusion", "Denominator Exclusions", "DenominatorExclusion_1"),
        population("numerator", "Numerator", "Numerator_1"),
        population(
            "measure-observation",
            "Denominator Observation",
            "MeasureObservation_1_1",
            **{"cqfm-aggregateMethod": "Sum", "cqfm-criteriaReference": "Denominator_1"},
        ),
        population(
            "measure-observation",
            "Numerator Observation",
            "MeasureObservation_1_2",
            **{"cqfm-aggregateMethod": "Count", "cqfm-criteriaReference": "Numerator_1"},
        ),
    ]


def test_ratio_observations_per_episode_less_exclusions(con, tmp_path):  # noqa: F811
    """Denominator observation of every denominator episode not excluded (e3 is not observed: it would
    give 0), numerator observation of every numerator episode; compared as the official rows are."""
    pops = ratio_populations()
    compiled, scored, observed = run(con, tmp_path, measure_json("ratio", pops))
    assert compiled.measure.scoring == "ratio"
    values = observation_values(observed)
    assert values == {
        ("p1", "MeasureObservation_1_1"): [1.0],
        ("p1", "MeasureObservation_1_2"): [5.0],
        ("p2", "MeasureObservation_1_1"): [1.0],
        ("p4", "MeasureObservation_1_1"): [1.0],
    }
    # the official rows' shape: one row per observation entry (MeasureObservation_<g>_<k>_<episode>)
    rows = [
        {
            "test_case": "t",
            "patient_id": "p2",
            "group_id": "Group_1",
            "population_code": code,
            "population_id": pid,
            "expected_count": n,
        }
        for code, pid, n in [
            ("initial-population", "InitialPopulation_1", "2"),
            ("denominator-exclusion", "DenominatorExclusion_1", "1"),
            ("measure-observation", "MeasureObservation_1_1_1", "1"),
            ("measure-observation", "MeasureObservation_1_2_1", "5"),  # p2 has no numerator episode
        ]
    ]
    result = ElmConformance("EpisodeTest")
    compare(result, rows, population_counts(scored, compiled), values)
    assert (result.compared, result.agreed) == (4, 3)
    assert result.disagreements == ["t (p2) MeasureObservation_1_2: expected 5, got None"]


def test_continuous_variable_populations_and_observation(con, tmp_path):  # noqa: F811
    """Measure population (and its exclusion) are reported under their own codes; the observation
    covers the measure population less its exclusions."""
    pops = [
        population("initial-population", "Initial Population", "InitialPopulation_1"),
        population("measure-population", "Initial Population", "MeasurePopulation_1"),
        population("measure-population-exclusion", "Denominator Exclusions", "MeasurePopulationExclusion_1"),
        population(
            "measure-observation",
            "Denominator Observation",
            "MeasureObservation_1",
            **{"cqfm-aggregateMethod": "Sum", "cqfm-criteriaReference": "MeasurePopulation_1"},
        ),
    ]
    compiled, scored, observed = run(con, tmp_path, measure_json("continuous-variable", pops))
    counts = population_counts(scored, compiled)
    assert counts[("Group_1", "p2", "measure-population")] == 2
    assert counts[("Group_1", "p2", "measure-population-exclusion")] == 1
    assert ("Group_1", "p2", "denominator") not in counts
    assert observation_values(observed) == {
        ("p1", "MeasureObservation_1"): [1.0],
        ("p2", "MeasureObservation_1"): [1.0],
        ("p4", "MeasureObservation_1"): [1.0],
    }


def test_same_or_before_and_after_of_intervals(con, tmp_path):  # noqa: F811
    """``A starts before or on day of B`` (CMS22's hypertension exclusion): SameOrBefore of the
    interval [start A, start A] and B, at day precision: the end of the first on or before the start
    of the second; SameOrAfter: the start of the first on or after the end of the second."""
    start = ivl(dt(2, 23), dt(2, 23), t="DateTime")
    same_day = ivl(dt(2, 8), dt(3, 0), t="DateTime")
    next_day = ivl(dt(3, 1), dt(4, 0), t="DateTime")
    day_before = ivl(dt(1, 1), dt(1, 2), t="DateTime")
    assert value(con, tmp_path, op("SameOrBefore", start, same_day, precision="Day")) is True
    assert value(con, tmp_path, op("SameOrBefore", start, same_day)) is False  # 23:00 after 08:00
    assert value(con, tmp_path, op("SameOrBefore", start, next_day, precision="Day")) is True
    assert value(con, tmp_path, op("SameOrBefore", start, day_before, precision="Day")) is False
    assert value(con, tmp_path, op("SameOrAfter", start, day_before, precision="Day")) is True
    assert value(con, tmp_path, op("SameOrAfter", start, next_day, precision="Day")) is False


def test_duration_and_difference_between(con, tmp_path):  # noqa: F811
    """From 1 March 23:00 to 2 March 22:00: no whole day (duration 0), one day boundary crossed
    (difference 1); 23 whole hours; a null operand gives null."""
    a, b = dt(1, 23), dt(2, 22)
    assert value(con, tmp_path, op("DurationBetween", a, b, precision="Day")) == 0
    assert value(con, tmp_path, op("DifferenceBetween", a, b, precision="Day")) == 1
    assert value(con, tmp_path, op("DurationBetween", a, b, precision="Hour")) == 23
    assert value(con, tmp_path, op("DurationBetween", b, a, precision="Hour")) == -23
    null = {"type": "Null", "resultTypeName": "{urn:hl7-org:elm-types:r1}DateTime"}
    assert value(con, tmp_path, op("DifferenceBetween", a, null, precision="Day")) is None


def test_truncated_divide_and_aggregates(con, tmp_path):  # noqa: F811
    """-7 div 2 is -3 (toward zero), div 0 is null; Min / Max / Sum ignore nulls, empty is null."""
    assert value(con, tmp_path, op("TruncatedDivide", lit(-7), lit(2))) == -3
    assert value(con, tmp_path, op("TruncatedDivide", lit(7.5, "Decimal"), lit(2))) == 3.0
    assert value(con, tmp_path, op("TruncatedDivide", lit(7), lit(0))) is None
    items = {"type": "List", "element": [lit(4), {"type": "Null"}, lit(-2), lit(9)]}
    for kind, want in (("Min", -2), ("Max", 9), ("Sum", 11)):
        node = {"type": kind, "source": items, "resultTypeName": "{urn:hl7-org:elm-types:r1}Integer"}
        assert value(con, tmp_path, node) == want
    empty = {"type": "Sum", "source": {"type": "List", "element": []}}
    assert value(con, tmp_path, {**empty, "resultTypeName": "{urn:hl7-org:elm-types:r1}Integer"}) is None


def test_in_value_set_of_a_value_set_operand(con, tmp_path):  # noqa: F811
    """``E.type in vs`` in a function whose ValueSet operand is bound to "Office Visit" by the caller
    (ELM ``valuesetExpression``, as CQMCommon's and VTE's functions write it)."""
    fn = {
        "type": "FunctionDef",
        "name": "typed",
        "operand": [{"name": "Enc"}, {"name": "vs"}],
        "expression": {
            "type": "AnyInValueSet",
            "codes": prop("type", source={"type": "OperandRef", "name": "Enc"}),
            "valuesetExpression": {"type": "OperandRef", "name": "vs"},
        },
    }
    call = {
        "type": "FunctionRef",
        "name": "typed",
        "operand": [{"type": "AliasRef", "name": "E"}, {"type": "ValueSetRef", "name": "Office Visit"}],
    }
    got = evaluate(
        con, tmp_path, {"type": "Exists", "operand": query("E", retrieve("Encounter"), call)}, (fn,)
    )
    assert got == {"p1": True, "p2": True, "p3": False, "p4": True}


def test_stratifiers_list_the_names_each_subject_meets(con, tmp_path):  # noqa: F811
    """Each subject's ``strata`` names the Measure's stratifier defines it meets: a patient-level
    Boolean holds for all the patient's episodes, a list of episodes for those in it, a list of
    Booleans (2026 CMS159's shape) when one of them is true (p2's list holds one true, for e3)."""
    pops = [population("initial-population", "Initial Population", "InitialPopulation_1")]
    names = ("Stratification 1", "Stratification 2", "Stratification 3")
    compiled, scored, _ = run(con, tmp_path, measure_json("proportion", pops, names))
    group = compiled.measure.model().groups[0]
    assert group.stratifiers == names
    assert group.stratifier_labels == ("stratum 1", "stratum 2", "stratum 3")
    assert {r[6]: r[-1] for r in scored} == {
        "e1": ["Stratification 1", "Stratification 2"],
        "e2": ["Stratification 1", "Stratification 2", "Stratification 3"],
        "e3": ["Stratification 1", "Stratification 3"],
        "e5": ["Stratification 2"],
    }
    plain = compile_measure(MeasureDef.read(tmp_path / "m.json"), tmp_path, PERIOD)
    assert plain.measure.stratifiers[0][0].expression == "Stratification 1"


def test_measures_run_writes_ratio_observations(tmp_path):
    """`measures run --package` (run.run_compiled_measures) writes a ratio measure's observations into
    ``measure_observations`` beside its ``measure_results`` rows, and a second run replaces them."""
    from chc_equity.measures.elm.run import run_compiled_measures
    from test_measures_elm import tiny_warehouse

    pops = ratio_populations()
    library(tmp_path, DEFINES, FUNCTIONS)
    (tmp_path / "m.json").write_text(json.dumps(measure_json("ratio", pops)))
    # the run loads the shipped terminology into valueset_codes: the test's value set lives apart
    compiled = compile_measure(MeasureDef.read(tmp_path / "m.json"), tmp_path, PERIOD, "test_valuesets")
    db = tiny_warehouse()
    try:
        db.execute("CREATE TABLE test_valuesets AS SELECT * FROM valueset_codes")
        for _ in range(2):
            written = run_compiled_measures(db, [compiled], period_start=PERIOD.start, period_end=PERIOD.end)
        assert written == {"EpisodeTest": 4}
        rows = db.execute(
            "SELECT patient_id, subject_type, subject_id, observation, value, period_start::VARCHAR "
            "FROM measure_observations WHERE measure = 'EpisodeTest'"
        ).fetchall()
        assert sorted(rows) == [
            ("p1", "Encounter", "e1", "MeasureObservation_1_1", 1.0, "2026-01-01"),
            ("p1", "Encounter", "e1", "MeasureObservation_1_2", 5.0, "2026-01-01"),
            ("p2", "Encounter", "e2", "MeasureObservation_1_1", 1.0, "2026-01-01"),
            ("p4", "Encounter", "e5", "MeasureObservation_1_1", 1.0, "2026-01-01"),
        ]
    finally:
        db.close()
