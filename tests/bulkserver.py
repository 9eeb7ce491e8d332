"""The SMART reference Bulk Data server (../shared/bulk-data-server) for the pull tests and by hand.

    python tests/bulkserver.py install              # npm install into .cache/bulk-data-server (once)
    python tests/bulkserver.py serve NDJSON_DIR     # import synthetic NDJSON, serve on a free port

Why this shape: the server is an independent implementation of FHIR Bulk Data + SMART Backend Services,
so the client is tested against someone else's reading of the spec. Its dependencies are installed once
into an ignored cache (``.cache/bulk-data-server``, or ``$CHC_BULK_SERVER_CACHE``) keyed by a hash of
its lock file; each test session copies the (small) sources into a temporary folder, links the cached
``node_modules``, imports our synthetic patients with the server's own ``data/import.ts`` and starts it
on a free 127.0.0.1 port. Two details of the shared copy are handled here: ``fhir-filter`` is a GitHub
dependency, installed from the local folder instead; ``sqlite3`` builds from source against Debian's
Node headers (no prebuilt binary download).

``FaultProxy`` sits between client and server (the server's BASE_URL names the proxy, so the
manifest's file URLs go through it too) and can cut the connection of the next N file downloads after
K bytes (a real killed connection, not a simulated one) or answer the next N matching requests itself
with a given HTTP response (``answer``) before the server sees them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "bulk-data-server"
CACHE = Path(os.environ.get("CHC_BULK_SERVER_CACHE") or ROOT / ".cache" / "bulk-data-server")
_PATCH_VERSION = "1"  # bump when the install recipe below changes


def node_available() -> str | None:
    """None when node and npm are usable, else why not."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _stamp() -> str:
    lock = (SHARED / "server" / "package-lock.json").read_bytes()
    return hashlib.sha256(lock + _PATCH_VERSION.encode()).hexdigest()[:16]


def install(log=print) -> Path:
    """Install the server's runtime dependencies into the cache (skipped when already current)."""
    server = CACHE / "server"
    stamp = CACHE / "installed.stamp"
    if stamp.exists() and stamp.read_text() == _stamp() and (server / "node_modules").is_dir():
        return server
    if CACHE.exists():
        shutil.rmtree(CACHE)
    CACHE.mkdir(parents=True)
    shutil.copytree(
        SHARED / "fhir-filter", CACHE / "fhir-filter", ignore=shutil.ignore_patterns("node_modules")
    )
    shutil.copytree(SHARED / "server", server, ignore=shutil.ignore_patterns("node_modules", "jobs"))
    for path in CACHE.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    package = json.loads((server / "package.json").read_text())
    package["dependencies"]["fhir-filter"] = "file:../fhir-filter"
    (server / "package.json").write_text(json.dumps(package, indent=2))
    lock = json.loads((server / "package-lock.json").read_text())
    lock["packages"].pop("node_modules/fhir-filter", None)
    lock["packages"][""]["dependencies"]["fhir-filter"] = "file:../fhir-filter"
    (server / "package-lock.json").write_text(json.dumps(lock, indent=2))
    env = dict(os.environ, npm_config_build_from_source="true", npm_config_sqlite="/usr")
    if Path("/usr/include/node/node.h").exists():
        env["npm_config_nodedir"] = "/usr"  # Debian's headers: node-gyp downloads nothing
    log("installing the Bulk Data server's npm dependencies (once; about 2 minutes) ...")
    subprocess.run(
        ["npm", "install", "--omit=dev", "--install-links", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=server,
        env=env,
        check=True,
    )
    subprocess.run(["node", "-e", "require('sqlite3')"], cwd=server, check=True)
    stamp.write_text(_stamp())
    return server


def _patient_of(resource: dict) -> str | None:
    for key in ("subject", "patient", "beneficiary", "for"):
        ref = (resource.get(key) or {}).get("reference", "") if isinstance(resource.get(key), dict) else ""
        if ref.startswith("Patient/"):
            return ref.split("/", 1)[1]
    return None


def bundles_from_ndjson(ndjson_dir: Path, out: Path) -> dict[str, int]:
    """One collection Bundle per patient (the shape the server's import.ts reads); resources outside
    any patient's compartment are left out (the server only exports them for system-level exports)."""
    by_patient: dict[str, list[dict]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for path in sorted(ndjson_dir.glob("*.ndjson")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            resource = json.loads(line)
            owner = resource["id"] if resource["resourceType"] == "Patient" else _patient_of(resource)
            if owner:
                by_patient[owner].append(resource)
                counts[resource["resourceType"]] += 1
    out.mkdir(parents=True, exist_ok=True)
    for patient, resources in by_patient.items():
        resources.sort(key=lambda r: r["resourceType"] != "Patient")
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
        (out / f"{patient}.json").write_text(json.dumps(bundle))
    # import.ts attaches three sample DocumentReferences to the first Patient and first Practitioner.
    practitioner = {
        "resourceType": "Practitioner",
        "id": "synthetic-practitioner",
        "name": [{"family": "Doe"}],
    }
    (out / "practitioner.json").write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": practitioner}]})
    )
    return dict(counts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BulkServer:
    """A running reference server (behind a FaultProxy) with its own database of our patients."""

    def __init__(self, workdir: Path, ndjson_dir: Path, log=print) -> None:
        cached = install(log)
        self.dir = workdir / "server"
        shutil.copytree(cached, self.dir, ignore=shutil.ignore_patterns("node_modules", "jobs", "*.db"))
        (self.dir / "node_modules").symlink_to(cached / "node_modules")
        (self.dir / "jobs").mkdir()
        self.counts = bundles_from_ndjson(ndjson_dir, workdir / "bundles")
        env = dict(os.environ, NODE_ENV="production")
        ts_node = [str(self.dir / "node_modules" / ".bin" / "ts-node"), "--transpile-only"]
        subprocess.run(
            [*ts_node, "data/import.ts", "-d", str(workdir / "bundles")],
            cwd=self.dir,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.port = free_port()
        self.proxy = FaultProxy(("127.0.0.1", self.port))
        self.url = f"http://127.0.0.1:{self.proxy.port}"
        env.update(PORT=str(self.port), BASE_URL=self.url, SECRET=os.urandom(16).hex())
        self.log_file = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [*ts_node, "."], cwd=self.dir, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import httpx  # here, so that `python3 tests/bulkserver.py install` needs no third-party package

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bulk data server exited early; see {self.log_file.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/fhir/metadata", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("bulk data server did not start within 60 s")

    def fhir(self, **sim) -> str:
        """FHIR base URL; keyword arguments become the server's simulation settings (base64 JSON)."""
        if not sim:
            return f"{self.url}/fhir"
        import base64

        encoded = base64.urlsafe_b64encode(json.dumps(sim).encode()).decode().rstrip("=")
        return f"{self.url}/{encoded}/fhir"

    def database(self) -> Path:
        return self.dir / "database.r4.db"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.proxy.close()
        self.log_file.close()


class FaultProxy:
    """A TCP forwarder on 127.0.0.1 that can kill the connection of chosen requests mid-response."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cuts: list[tuple[str, int]] = []  # (path fragment, bytes to pass before cutting)
        self._answers: list[tuple[str, bytes]] = []  # (path fragment, whole HTTP response)
        self.answered = 0
        self.cut_count = 0
        # The address the server sees for our connections. The server rate-limits each route per client
        # address (60 requests a minute, then that address is blocked for 5 minutes); one test module
        # makes many pulls within a minute, so each test is its own client (:meth:`new_client`).
        self.source = "127.0.0.1"
        self._clients = 1
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, fragment: str, after_bytes: int, times: int = 1) -> None:
        """Kill the next ``times`` responses to requests whose first line contains ``fragment``."""
        with self._lock:
            self._cuts.extend([(fragment, after_bytes)] * times)

    def answer(self, fragment: str, status: int, body: dict, times: int = 1) -> None:
        """Answer the next ``times`` requests whose first line contains ``fragment`` with ``status`` and
        the JSON ``body`` (then close that connection); the server never sees those requests."""
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status} Proxy Answer\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        ).encode()
        with self._lock:
            self._answers.extend([(fragment, head + data)] * times)

    def new_client(self) -> str:
        """Make the following connections come from the next loopback address (127.0.0.2, ...: all of
        127/8 is this host on Linux), so the server counts them as a new client."""
        with self._lock:
            self._clients += 1
            n = self._clients
            self.source = f"127.0.{n // 250}.{n % 250 + 1}"
            return self.source

    def clear(self) -> None:
        with self._lock:
            self._cuts.clear()
            self._answers.clear()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take(self, queue: list, request_head: bytes):
        """Remove and return the value of the first (fragment, value) in ``queue`` whose fragment is in
        the request's first line; None when none matches."""
        first = request_head.split(b"\r\n", 1)[0].decode("latin-1")
        with self._lock:
            for i, (fragment, value) in enumerate(queue):
                if fragment in first:
                    del queue[i]
                    return value
        return None

    def _serve(self, client: socket.socket) -> None:
        """One client connection; one request at a time (the client waits for each response)."""
        upstream = socket.create_connection(self.target, source_address=(self.source, 0))
        budget: list[int | None] = [None]

        def downstream() -> None:
            try:
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        break
                    if budget[0] is not None:
                        if len(data) >= budget[0]:
                            client.sendall(data[: budget[0]])
                            with self._lock:
                                self.cut_count += 1
                            break
                        budget[0] -= len(data)
                    client.sendall(data)
            except OSError:
                pass
            finally:
                for s in (client, upstream):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()

        threading.Thread(target=downstream, daemon=True).start()
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                if data[:4] in (b"GET ", b"POST", b"DELE", b"PUT ", b"HEAD"):
                    canned = self._take(self._answers, data)
                    if canned is not None:  # the previous response is complete: the client waited for it
                        with self._lock:
                            self.answered += 1
                        client.sendall(canned)
                        break  # "Connection: close"; closing upstream ends the downstream thread too
                    cut = self._take(self._cuts, data)
                    if cut is not None:
                        budget[0] = cut
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "install":
        why = node_available()
        if why:
            print(f"skipping the Bulk Data server install: {why}")
            sys.exit(0)
        install()
        print(f"Bulk Data server dependencies ready in {CACHE}")
    elif len(sys.argv) == 3 and sys.argv[1] == "serve":
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            srv = BulkServer(Path(tmp), Path(sys.argv[2]))
            print(f"serving {srv.counts} at {srv.fhir()} (Ctrl-C stops)")
            try:
                srv.process.wait()
            except KeyboardInterrupt:
                pass
            finally:
                srv.stop()
    else:
        print(__doc__)
        sys.exit(2)
