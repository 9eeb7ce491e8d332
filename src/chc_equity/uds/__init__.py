"""UDS report tables 3A, 3B, 4, 6B and 7 with HRSA-style validation edits (docs/uds.md).

- ``config``: countable-visit rule and designated sites per center, edit thresholds (``--config``).
- ``patients``: ``uds_visits`` / ``uds_patients`` (one row per UDS patient with its line ids).
- ``demographics`` / ``quality``: the tables as pure functions; ``edits``: the validation edits.
- ``report``: per-center build, network roll-up, optional suppression; ``export``: CSV, JSON, Excel.
"""

from chc_equity.uds.config import UdsConfig, load_config, parse_config
from chc_equity.uds.report import NETWORK, TABLES, UdsReport, build_report

__all__ = ["NETWORK", "TABLES", "UdsConfig", "UdsReport", "build_report", "load_config", "parse_config"]
