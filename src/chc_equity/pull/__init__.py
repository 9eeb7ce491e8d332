"""Pull from an EHR: a FHIR Bulk Data ``$export`` client feeding the normal ingest.

- ``auth``: SMART Backend Services (signed JWT client assertion, RS384/ES384, token refresh); where
  credentials come from (a file or the environment) and how they are kept out of logs.
- ``bulk``: the HTTP side of one export: kick-off, polling (Retry-After, backoff), manifest, parallel
  NDJSON download with retries and HTTP Range resume.
- ``deleted``: ``deleted`` manifest entries (transaction Bundles of DELETEs) -> resource keys.
- ``state``: the ``pulls`` table: one row per pull attempt, the ``_since`` of the next pull.
- ``runner``: ``pull()``: export -> download -> one ingest load whose transaction also applies the
  deletions and records the pull, so a pull is all-or-nothing.
- ``schedule``: ``--every 24h``.
"""

from chc_equity.pull.auth import Credentials, load_credentials
from chc_equity.pull.bulk import PullError
from chc_equity.pull.runner import PullResult, pull

__all__ = ["Credentials", "PullError", "PullResult", "load_credentials", "pull"]
