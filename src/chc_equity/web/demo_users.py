"""Demo users for `make demo`: one user per role, center staff for the first center, program staff for
the voucher program.

Passwords are random on every call (printed by the demo, never stored in clear): a demo warehouse must
not come with a well-known password that outlives the demo. Existing demo users get a new password
(which also ends their sessions), so the returned credentials always work.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from chc_equity.web.authstore import AuthStore
from chc_equity.web.data import open_warehouse
from chc_equity.web.roles import Role

DemoUser = tuple[str, str, Role, str | None]


def _centers(warehouse: Path) -> list[str]:
    with open_warehouse(warehouse) as con:
        return [r[0] for r in con.execute("SELECT DISTINCT center FROM loads ORDER BY center").fetchall()]


def seed_demo_users(warehouse: Path) -> list[DemoUser]:
    """Create (or reset) demo users in the warehouse's app database; returns (user, password, role, center).

    The warehouse must not be open for writing by the caller (it is read once, read-only, for the
    center ids): close the demo's connection first.
    """
    centers = _centers(Path(warehouse))
    first = centers[0] if centers else None
    wanted: list[tuple[str, Role, str | None]] = [
        ("admin", Role.NETWORK_ADMIN, None),
        ("analyst", Role.NETWORK_ANALYST, None),
        ("viewer", Role.VIEWER, None),
        ("program", Role.PROGRAM_STAFF, None),  # the farmworker voucher program (demo.serve seeds a season)
    ]
    if first is not None:
        name = re.sub(r"[^a-z0-9._@-]", "-", f"staff-{first}".lower())[:64]
        wanted.append((name, Role.CENTER_STAFF, first))
    store = AuthStore.for_warehouse(Path(warehouse))
    existing = {u.username: u for u in store.list_users()}
    out: list[DemoUser] = []
    for name, role, center in wanted:
        password = secrets.token_urlsafe(12)
        current = existing.get(name)
        if current is not None and (current.role, current.center) == (role, center):
            store.set_password(name, password)
        else:
            if current is not None:
                store.delete_user(name)
            store.add_user(name, password, role, center)
        out.append((name, password, role, center))
    return out
