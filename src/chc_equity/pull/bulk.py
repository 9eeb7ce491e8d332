"""The HTTP side of one FHIR Bulk Data export (Bulk Data Access IG STU2).

kick-off (``Prefer: respond-async``) -> poll the status URL (honouring ``Retry-After``, else exponential
backoff; transient 5xx/429 retried) -> manifest -> download every file in parallel, each with retries.
A broken download resumes with ``Range: bytes=N-`` when the server said ``Accept-Ranges: bytes`` and
sent the file unencoded (byte offsets of an on-the-fly gzip stream are not stable); otherwise it starts
the file again. A file is complete when its HTTP framing (Content-Length or the chunked terminator) ended
cleanly and, for gzip, the stream's trailer checks out; a line count that differs from the manifest's
advisory ``count`` is reported, not fatal. Anything that still fails raises :class:`PullError`, and the
caller loads nothing.

Nothing here logs response bodies (they hold patient data); messages name URLs, statuses and counts.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from chc_equity.pull.auth import AuthError, TokenSource

NDJSON = "application/fhir+ndjson"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
Log = Callable[[str], None]


class PullError(Exception):
    """A pull that cannot finish; the message says which step, which URL and why (never data)."""


@dataclass(frozen=True)
class Policy:
    """How patient the client is; the tests shrink the waits."""

    attempts: int = 5  # per request or file download
    backoff_s: float = 1.0  # first wait; doubles each retry
    max_wait_s: float = 120.0  # cap on any one wait (Retry-After included)
    settle_s: float = 1.0  # pause before re-reading a complete manifest (see BulkClient._settled)
    settle_reads: int = 3
    poll_timeout_s: float = 6 * 3600.0  # an export still not ready after this is abandoned
    parallel: int = 4  # concurrent file downloads
    timeout_s: float = 60.0  # per HTTP read/connect


@dataclass(frozen=True)
class FileEntry:
    type: str
    url: str
    count: int | None = None


@dataclass
class Manifest:
    transaction_time: str
    requires_token: bool
    output: list[FileEntry]
    deleted: list[FileEntry]
    error: list[FileEntry]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Manifest:
        def entries(key: str) -> list[FileEntry]:
            return [
                FileEntry(str(e.get("type") or ""), str(e["url"]), e.get("count"))
                for e in body.get(key) or []
                if isinstance(e, dict) and e.get("url")
            ]

        if not body.get("transactionTime"):
            raise PullError("manifest has no transactionTime")
        return cls(
            transaction_time=str(body["transactionTime"]),
            requires_token=bool(body.get("requiresAccessToken")),
            output=entries("output"),
            deleted=entries("deleted"),
            error=entries("error"),
        )


@dataclass
class Downloaded:
    entry: FileEntry
    path: Path
    nbytes: int
    lines: int
    attempts: int = 1


@dataclass
class ExportRequest:
    """What to export: a Group's data, optionally only what changed since an instant."""

    group: str
    since: str | None = None
    types: list[str] = field(default_factory=list)

    def params(self) -> dict[str, str]:
        out = {"_outputFormat": NDJSON}
        if self.since:
            out["_since"] = self.since
        if self.types:
            out["_type"] = ",".join(self.types)
        return out


def retry_after(response: httpx.Response, default: float, cap: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else ``default``."""
    value = response.headers.get("Retry-After")
    if value:
        try:
            return min(max(float(value), 0.0), cap)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            if when is not None:
                return min(max(when.timestamp() - time.time(), 0.0), cap)
    return min(default, cap)


def _is_transient(response: httpx.Response) -> bool:
    """A 5xx whose OperationOutcome has an issue with code ``transient``: the Bulk Data spec's way for a
    server to say "this status request failed, the export did not; ask again"."""
    if response.status_code < 500:
        return False
    try:
        issues = response.json().get("issue") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(i, dict) and i.get("code") == "transient" for i in issues)


def _outcome_text(response: httpx.Response) -> str:
    """The diagnostics of an OperationOutcome reply (server text, not patient data), else the status."""
    try:
        body = response.json()
        issues = body.get("issue") or []
        texts = [str(i.get("diagnostics") or i.get("code") or "") for i in issues if isinstance(i, dict)]
        text = "; ".join(t for t in texts if t)
    except (ValueError, AttributeError):
        text = ""
    return f"HTTP {response.status_code}" + (f": {text[:300]}" if text else "")


class BulkClient:
    """One server's Bulk Data API; every request goes through :meth:`_send` (auth, retries)."""

    def __init__(
        self,
        base: str,
        client: httpx.Client,
        tokens: TokenSource | None = None,
        policy: Policy | None = None,
        log: Log | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base.rstrip("/")
        self.client = client
        self.tokens = tokens
        self.policy = policy or Policy()
        self.log = log or (lambda _msg: None)
        self.sleep = sleep

    # -- requests -------------------------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.tokens is not None:
            try:
                headers.update(self.tokens.header())
            except AuthError as exc:
                raise PullError(f"authorization: {exc}") from None
        return headers

    def _send(
        self, method: str, url: str, what: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """A request retried on connection errors, 429 and 5xx (waiting Retry-After or backoff), and
        once more with a fresh token on 401. Returns the final response, whatever its status."""
        wait = self.policy.backoff_s
        renewed = False
        for attempt in range(1, self.policy.attempts + 1):
            try:
                response = self.client.request(method, url, headers=self._headers(headers))
            except httpx.TransportError as exc:
                if attempt == self.policy.attempts:
                    raise PullError(f"{what}: {url}: {type(exc).__name__} after {attempt} attempts") from None
                self.log(f"{what}: {type(exc).__name__}; retrying in {wait:.0f}s")
                self.sleep(wait)
                wait = min(wait * 2, self.policy.max_wait_s)
                continue
            if response.status_code == 401 and self.tokens is not None and not renewed:
                renewed = True
                self.tokens.invalidate()
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.policy.attempts:
                delay = retry_after(response, wait, self.policy.max_wait_s)
                self.log(f"{what}: HTTP {response.status_code}; retrying in {delay:.0f}s")
                self.sleep(delay)
                wait = min(wait * 2, self.policy.max_wait_s)
                continue
            return response
        raise PullError(f"{what}: {url}: still unauthorized with a fresh token")

    # -- the export -----------------------------------------------------------------------------------
    def kick_off(self, request: ExportRequest) -> str:
        """Start a Group export; returns the status URL (Content-Location)."""
        url = f"{self.base}/Group/{request.group}/$export?{urlencode(request.params())}"
        headers = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
        response = self._send("GET", url, "kick-off", headers)
        if response.status_code != 202:
            raise PullError(f"kick-off refused: {_outcome_text(response)}")
        location = response.headers.get("Content-Location")
        if not location:
            raise PullError("kick-off answered 202 without a Content-Location status URL")
        return location

    def wait_for_manifest(self, status_url: str) -> Manifest:
        """Poll until the export is complete; 202 waits Retry-After (else backoff); errors raise.

        A 429 ("polling too often") and a 5xx marked ``transient`` are not failures of the export: the
        Bulk Data spec asks the client to back off and ask again, so it waits (Retry-After, else a
        doubling backoff) and keeps polling until the poll deadline. The SMART reference server answers
        429 once a client exceeds 60 status requests a minute (a long export polled every Retry-After
        second reaches that), and its simulated transient error can repeat while the export is still
        being written (the job's own progress saves overwrite the "already failed once" flag).
        """
        deadline = time.monotonic() + self.policy.poll_timeout_s
        wait = self.policy.backoff_s
        while True:
            response = self._send("GET", status_url, "status", {"Accept": "application/json"})
            if response.status_code == 200:
                return self._settled(status_url, self._manifest(status_url, response))
            again = response.status_code == 429 or _is_transient(response)
            if response.status_code != 202 and not again:
                raise PullError(f"export failed: {_outcome_text(response)}")
            if time.monotonic() > deadline:
                self.cancel(status_url)
                raise PullError(f"export not ready after {self.policy.poll_timeout_s:.0f}s; cancelled")
            progress = response.headers.get("X-Progress")
            delay = retry_after(response, wait, self.policy.max_wait_s)
            if again:
                self.log(f"status: {_outcome_text(response)}; asking again in {delay:.0f}s")
            elif progress:
                self.log(f"export in progress: {progress}")
            self.sleep(delay)
            if again or "Retry-After" not in response.headers:
                wait = min(wait * 2, self.policy.max_wait_s)

    def _manifest(self, status_url: str, response: httpx.Response) -> Manifest:
        try:
            return Manifest.parse(response.json())
        except ValueError:
            raise PullError(f"status: {status_url}: the manifest is not JSON") from None

    def _settled(self, status_url: str, manifest: Manifest) -> Manifest:
        """Re-read a complete manifest until two reads list the same files (at most ``settle_reads``).

        Why: a server may answer "complete" a moment before its last file entry is saved (the SMART
        reference server does, docs/pull.md); trusting the first read would silently skip that file, and
        ``--since auto`` would then never fetch it again. A stable server costs one extra request.
        """
        for _ in range(self.policy.settle_reads):
            self.sleep(self.policy.settle_s)
            response = self._send("GET", status_url, "status", {"Accept": "application/json"})
            if response.status_code != 200:
                return manifest  # e.g. the server already deleted it: keep what we have
            again = self._manifest(status_url, response)
            if _files(again) == _files(manifest):
                return again
            self.log("the export manifest changed after completion; reading it again")
            manifest = again
        return manifest

    def cancel(self, status_url: str) -> None:
        """Tell the server we are done with the export (it may delete the files); failures ignored."""
        with contextlib.suppress(httpx.HTTPError, PullError):
            self.client.delete(status_url, headers=self._headers())

    def download_all(self, entries: list[FileEntry], folder: Path, requires_token: bool) -> list[Downloaded]:
        """Every file, ``policy.parallel`` at a time, named ``NNNN.<Type>.ndjson[.gz]`` in list order."""
        folder.mkdir(parents=True, exist_ok=True)
        jobs = [(entry, folder / f"{i:04d}.{entry.type or 'output'}") for i, entry in enumerate(entries, 1)]
        with ThreadPoolExecutor(max_workers=max(1, self.policy.parallel)) as pool:
            futures = [pool.submit(self.download, entry, stem, requires_token) for entry, stem in jobs]
            return [f.result() for f in futures]

    def download(self, entry: FileEntry, stem: Path, requires_token: bool) -> Downloaded:
        """One file, retried and resumed; the saved file keeps the server's gzip encoding if it used one."""
        part = stem.with_name(stem.name + ".part")
        resumable = False
        received = 0
        encoding = ""
        wait = self.policy.backoff_s
        last_error = ""
        for attempt in range(1, self.policy.attempts + 1):
            headers = {"Accept": NDJSON, "Accept-Encoding": "gzip"}
            if resumable and received:
                headers["Range"] = f"bytes={received}-"
            try:
                received, encoding, resumable = self._fetch(entry, part, headers, received, requires_token)
                final = stem.with_name(stem.name + (".ndjson.gz" if encoding == "gzip" else ".ndjson"))
                lines = _count_lines(part, gzipped=encoding == "gzip")
                if entry.count is not None and lines != int(entry.count):
                    # Not an error: count is advisory in the spec and HTTP framing already proved the
                    # transfer complete (the reference server's deletion simulation miscounts too).
                    self.log(f"download {entry.url}: {lines} resources where the manifest says {entry.count}")
                part.replace(final)
                return Downloaded(entry, final, received, lines, attempt)
            except (_Incomplete, httpx.TransportError) as exc:
                last_error = str(exc) if isinstance(exc, _Incomplete) else type(exc).__name__
                if not resumable:
                    received = 0
            if attempt < self.policy.attempts:
                self.log(f"download {entry.url}: {last_error}; retry {attempt} in {wait:.0f}s")
                self.sleep(wait)
                wait = min(wait * 2, self.policy.max_wait_s)
        part.unlink(missing_ok=True)
        raise PullError(f"download {entry.url} failed after {self.policy.attempts} attempts: {last_error}")

    def _fetch(
        self, entry: FileEntry, part: Path, headers: dict[str, str], offset: int, requires_token: bool
    ) -> tuple[int, str, bool]:
        """Stream one attempt into ``part``; returns (bytes on disk, content encoding, resumable)."""
        headers = self._headers(headers) if requires_token else headers
        with self.client.stream("GET", entry.url, headers=headers) as response:
            if response.status_code == 401 and self.tokens is not None and requires_token:
                self.tokens.invalidate()
                raise _Incomplete("HTTP 401 (token renewed)")
            if response.status_code in RETRY_STATUSES:
                raise _Incomplete(f"HTTP {response.status_code}")
            if response.status_code not in (200, 206):
                response.read()
                raise PullError(f"download {entry.url}: {_outcome_text(response)}")
            encoding = response.headers.get("Content-Encoding", "").lower()
            resumable = response.headers.get("Accept-Ranges", "").lower() == "bytes" and not encoding
            appending = response.status_code == 206 and offset > 0
            mode = "ab" if appending else "wb"
            done = offset if appending else 0
            chunks = response.iter_raw() if encoding in ("", "gzip") else response.iter_bytes()
            with open(part, mode) as out:
                for chunk in chunks:
                    out.write(chunk)
                    done += len(chunk)
            if encoding not in ("", "gzip"):
                encoding = ""  # httpx decoded it
            return done, encoding, resumable


class _Incomplete(Exception):
    """A download attempt that ended early or short; retried."""


def _files(manifest: Manifest) -> set[tuple[str, str]]:
    return {(e.type, e.url) for e in manifest.output + manifest.deleted + manifest.error}


def _count_lines(path: Path, gzipped: bool) -> int:
    """Non-blank lines of an NDJSON file (what the manifest's ``count`` counts)."""
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, EOFError) as exc:  # a truncated gzip stream
        raise _Incomplete(f"unreadable download ({type(exc).__name__})") from None
