"""Scale-out on Apache Spark: the embedded pipeline, run per partition of whole patients (docs/spark.md).

- ``tasks``: what runs inside a Spark task (no pyspark import at module level): parse with the ingest
  readers, route each resource to its patient through the built-in views, and per partition run the
  views, every measure and the patient attributes in an in-memory DuckDB warehouse;
- ``pipeline``: the driver: inputs, the per-key winner, the shuffles, equity counts by Spark SQL,
  staging and the commit by rename;
- ``attach``: an embedded warehouse built from a committed output, so the CLI, UDS tables and the web
  app work on a Spark-computed network;
- ``compare``: the embedded (DuckDB) run of the same inputs, for the identical-results tests and the
  benchmark.
"""
