"""FHIR ingest: bulk NDJSON, Bundles and single resources into the warehouse's ``resources`` table.

- ``fhir``: the R4 rules checked at the door (resource types, ids, dates in indexed fields).
- ``records``: Resource / Reject and the per-resource check; the reject-reason vocabulary.
- ``bundle``: Bundle expansion and ``urn:uuid:`` reference rewriting.
- ``sources``: file discovery and streaming readers (NDJSON line by line, gzip by content).
- ``store``: Arrow-batched staging and the SQL merge into ``resources``.
- ``loader``: ``load()``, one load = one transaction.
"""

from chc_equity.ingest.loader import LoadResult, load, mark_stale
from chc_equity.ingest.records import REASONS
from chc_equity.ingest.store import list_rejects

__all__ = ["REASONS", "LoadResult", "list_rejects", "load", "mark_stale"]
