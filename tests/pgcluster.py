"""A throwaway PostgreSQL cluster for the app-database tests: ``initdb`` + ``pg_ctl`` in a temp dir.

No system service is used: the binaries come from /usr/lib/postgresql/*/bin (Debian's ``postgresql``
package, which .ci/run installs) or the PATH. Without them the tests skip with the reason -- except in
CI (``CI=true``), where a missing PostgreSQL is a failure, so the PostgreSQL half cannot vanish silently.
As root (CI, the dev container) the server runs as the ``postgres`` (else ``nobody``) system user:
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def pg_bin() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres (newest version first), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def require_pg_bin() -> Path:
    found = pg_bin()
    if found is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> tuple[list[str], pwd.struct_passwd | None]:
    """Command prefix to drop root, and the user it runs as."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], user
    pytest.fail("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@contextmanager
def pg_cluster() -> Iterator[str]:
    """Start a cluster on a free localhost port; yields the admin URL (database ``postgres``)."""
    bindir = require_pg_bin()
    prefix, user = _as_user()
    root = Path(tempfile.mkdtemp(prefix="chc-pg-"))
    data = root / "data"
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    port = _free_port()
    run = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "chc", "--auth=trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} -c fsync=on"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
        try:
            yield f"postgresql://chc@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def new_database(admin_url: str) -> str:
    """A fresh, empty database in the cluster; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name
