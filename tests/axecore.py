"""axe-core (the accessibility rules engine) for the browser tests, from npm into an ignored cache.

Usage::

    python tests/axecore.py install        # npm install axe-core into .cache/axe-core (once)

The browser tests call :func:`axe_source`, which installs on first use when npm is there, and skip with
the reason only when it truly cannot be obtained (no npm and no cached copy). No browser is downloaded:
axe is one JavaScript file that the test evaluates inside Debian's Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "4.10.3"  # pinned: a new axe release can add rules; bump deliberately
CACHE = Path(os.environ.get("CHC_AXE_CACHE") or ROOT / ".cache" / "axe-core")


def script_path() -> Path:
    return CACHE / VERSION / "node_modules" / "axe-core" / "axe.min.js"


def install(log=print) -> Path:
    """Install axe-core ``VERSION`` into the cache unless it is there; returns axe.min.js."""
    target = script_path()
    if target.is_file():
        return target
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed and axe-core is not cached (.cache/axe-core)")
    folder = CACHE / VERSION
    folder.mkdir(parents=True, exist_ok=True)
    log(f"installing axe-core {VERSION} with npm into {folder} (once) ...")
    subprocess.run(
        ["npm", "install", f"axe-core@{VERSION}", "--no-audit", "--no-fund", "--no-save", "--loglevel=error"],
        cwd=folder,
        check=True,
        timeout=300,
    )
    if not target.is_file():
        raise RuntimeError(f"npm installed axe-core but {target} is missing")
    return target


def axe_source() -> str | None:
    """The text of axe.min.js, or None when it cannot be obtained (then the caller skips, with why)."""
    try:
        return install(log=lambda _m: None).read_text()
    except (RuntimeError, OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install())
    else:
        print(__doc__)
