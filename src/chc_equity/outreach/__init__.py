"""CHW program analytics: one worklist per center, billable CHW services, program indicators.

Pure functions and SQL over the warehouse (read-only). Records people write (assignments, outreach
attempts) live in the app database and come in as plain mappings or data frames; see docs/outreach.md.
"""
