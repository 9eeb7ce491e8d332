"""FHIR ingest: bulk NDJSON, Bundles and single resources into the warehouse's ``resources`` table."""
