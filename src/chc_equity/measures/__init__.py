"""eCQMs over the flat tables: one readable module per measure, a shared engine, patient-level results.

- ``model``: measure metadata (groups, populations, basis, UDS line).
- ``cql`` / ``codes``: SQL fragments for CQL semantics and value-set tests, named after CQL.
- ``library``: the shared CQL libraries (Status, Hospice, AdvancedIllnessandFrailty, PalliativeCare, ...).
- ``ecqm``: one module per measure.
- ``engine``: applies the proportion-scoring rules and writes ``measure_results``.
- ``evaluate``: the test-suite entry point (`chc-equity measures evaluate`).
"""
