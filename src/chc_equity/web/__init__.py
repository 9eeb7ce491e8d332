"""The chc-equity web app: FastAPI, server-rendered pages, a JSON API under /api.

Use :func:`create_app` with a :class:`WebConfig`; `chc-equity serve` does that and runs uvicorn.
"""

from chc_equity.web.app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
