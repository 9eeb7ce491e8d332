"""Import the users and sessions of a pre-app-database ``<warehouse>.auth.sqlite`` (once).

Why import rather than keep reading it: one place for users means one set of migrations and one backup.
Users already in the app database win (nothing is overwritten); open sessions come along, so nobody is
signed out by the upgrade; failed-login counts are not kept (they expire within minutes anyway). The old
file is then renamed to ``*.auth.sqlite.migrated`` -- kept, not deleted, so an operator can check it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from sqlalchemy import select

from chc_equity.appdb.engine import AppDB
from chc_equity.appdb.models import User, UserSession


def import_legacy_auth(db: AppDB, path: Path) -> int:
    """Copy users (and their sessions) from ``path`` into ``db``; returns how many users were added."""
    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        users = con.execute("SELECT username, password_hash, role, center, created_at FROM users").fetchall()
        sessions = con.execute(
            "SELECT token_sha256, username, csrf_token, created_at, last_seen FROM sessions"
        ).fetchall()
    finally:
        con.close()
    added = 0
    with db.write() as session:
        known = set(session.scalars(select(User.username)))
        for username, password_hash, role, center, created_at in users:
            if username in known:
                continue
            session.add(
                User(
                    username=username,
                    password_hash=password_hash,
                    role=role,
                    center=center,
                    created_at=created_at,
                )
            )
            added += 1
        session.flush()
        new = {u for u, *_ in users if u not in known}
        for token, username, csrf, created_at, last_seen in sessions:
            if username in new:
                session.add(
                    UserSession(
                        token_sha256=token,
                        username=username,
                        csrf_token=csrf,
                        created_at=created_at,
                        last_seen=last_seen,
                    )
                )
    with contextlib.suppress(FileNotFoundError):  # another process imported it at the same moment
        path.rename(path.with_name(path.name + ".migrated"))
    return added
