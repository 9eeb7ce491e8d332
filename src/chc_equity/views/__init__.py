"""SQL-on-FHIR v2 views: ViewDefinitions compiled to DuckDB SQL, and the built-in flat tables.

- ``compiler``: ViewDefinition JSON -> one SQL query over the raw ``resources`` table.
- ``conformance``: runs the HL7 SQL-on-FHIR test suite and writes its test report format.
- ``build``: materializes the built-in ViewDefinitions (``definitions/*.json``) as ``flat.<name>``.
"""
