"""chc-equity: quality and health-equity analytics for community health centers.

Data flows one way: ingest -> views -> terminology -> measures -> equity -> uds/network -> web/cli.
See docs/architecture.md.
"""

__version__ = "0.1.0"
