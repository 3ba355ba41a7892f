"""A ledger built the way a user builds one, and `cra-fw serve` running on it.

The ledger is written only by real `cra-fw` processes: feeds imported from the
fixture feeds, releases recorded by `cra-fw release add` (a real scan of a fixture
image each), reports filed and fixes recorded with `cra-fw case ...`.  Times come
from ``CRA_FW_NOW``, so every Article 14 clock is in a known state at :data:`NOW`
(ground truth by construction, written next to each step):

========  =========  ====================  =====================================================
product   case       aware (UTC)           at NOW (2026-11-20 12:00)
========  =========  ====================  =====================================================
hub       closed     2026-11-02 08:05      all three reports filed (final after a mitigation)
sensor    running    2026-11-05 08:05      both filed; fixing release 4.1 on 11-10 12:00: final
                                           due 11-24 12:00, 96 h left
router    OVERDUE    2026-11-17 09:00      nothing filed: early warning due 11-18 09:00, 51 h over
gateway   running    2026-11-18 12:05      early warning filed late (11-19 15:00); notification due
                                           11-21 12:05, 24.1 h left
camera    running    2026-11-20 04:05      early warning due 11-21 04:05, 16.1 h left
========  =========  ====================  =====================================================

Every case is CVE-2023-4911 (glibc 2.34 <= v < 2.39, KEV-listed in the fixture KEV
catalog): each image above but sqfs-xz-armhf-libs ships glibc 2.36
(fixtures/images/ground-truth.json).  Only a glibc whose exact release the image
records (the libc banner: the sqfs images) opens a case; one known from symbol
versions alone is a possible match, which never does (issue 17), so the products
with a case ship a squashfs image.  The ledger is built once per test session,
shared by pytest-xdist workers through a lock, and never written to afterwards;
a test that writes copies it first (:func:`private_copy`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ledger.conftest import KEV, NVD

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "fixtures" / "images"
NOW = "2026-11-20T12:00:00Z"

# (product, version, image, release date, recorded at)
RELEASES = (
    ("hub", "1.0", "sqfs-lzo-armhf.sqfs", "2026-11-02T08:00:00Z", "2026-11-02T08:05:00Z"),
    ("sensor", "4.0", "sqfs-lzo-armhf.sqfs", "2026-11-05T08:00:00Z", "2026-11-05T08:05:00Z"),
    ("sensor", "4.1", "sqfs-xz-armhf-libs.sqfs", "2026-11-10T12:00:00Z", "2026-11-10T12:05:00Z"),
    ("router", "1.0", "sqfs-xz-mipsel.sqfs", "2026-11-17T09:00:00Z", "2026-11-17T09:00:00Z"),
    ("gateway", "3.0", "sqfs-lzo-armhf.sqfs", "2026-11-18T12:00:00Z", "2026-11-18T12:05:00Z"),
    ("router", "1.1", "sqfs-gzip-arm64.sqfs", "2026-11-19T10:00:00Z", "2026-11-19T10:05:00Z"),
    ("camera", "2.0", "sqfs-lzo-armhf.sqfs", "2026-11-20T04:00:00Z", "2026-11-20T04:05:00Z"),
)


@dataclass(frozen=True)
class Ledger:
    folder: Path

    @property
    def db(self) -> Path:
        return self.folder / "ledger.db"

    def env(self, now: str = NOW) -> dict[str, str]:
        return dict(os.environ, CRA_FW_DB=str(self.db), CRA_FW_NOW=now, TZ="UTC")

    def cli(self, *args: str, now: str = NOW, code: int = 0) -> str:
        """Run `cra-fw ARGS` on this ledger; its stdout."""
        proc = subprocess.run(
            [sys.executable, "-m", "cra_fw", *args],
            env=self.env(now),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=self.folder,
        )
        assert proc.returncode == code, f"cra-fw {' '.join(args)}: {proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr
        return proc.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.cli(*args, "--json"))


def _build(ledger: Ledger) -> None:
    cli = ledger.cli
    cli("db", "import", str(NVD), now="2026-11-01T00:00:00Z")
    cli("db", "import", str(KEV), now="2026-11-01T00:00:00Z")
    products = {
        "router": ("--manufacturer", "Example GmbH", "--category", "important-class-I", "--market", "DE"),
        "camera": ("--manufacturer", "Example GmbH", "--market", "FR"),
        "gateway": ("--manufacturer", "Example GmbH", "--category", "important-class-II"),
        "sensor": (
            "--manufacturer",
            "Sensors AG",
        ),
        "hub": (
            "--manufacturer",
            "Example GmbH",
        ),
    }
    for name, options in products.items():
        cli("product", "add", name, *options, now="2026-11-01T00:00:00Z")
    cli("support", "set", "router", "--start", "2026-11", "--end", "2031-12", now="2026-11-01T00:00:00Z")
    cli("support", "set", "camera", "--start", "2026-11", "--end", "2027-06", now="2026-11-01T00:00:00Z")
    cli(
        "support", "set", "gateway", "--start", "2026-11", "--end", "2029-10",
        "--justification", "replaced by the operator after three years", now="2026-11-01T00:00:00Z",
    )  # fmt: skip
    cli("support", "set", "hub", "--start", "2021-01", "--end", "2026-09", now="2026-11-01T00:00:00Z")
    # sensor: no support period declared

    def release(product: str, version: str) -> None:
        [(_p, _v, image, date, at)] = [r for r in RELEASES if r[:2] == (product, version)]
        cli("release", "add", product, version, str(IMAGES / image), "-q", "--date", date, now=at)

    def case_of(product: str) -> int:
        [case] = [c for c in ledger.json("cases") if c["product"] == product]
        return case["id"]

    release("hub", "1.0")  # opens hub's case, aware 11-02 08:05
    hub = case_of("hub")
    cli("case", "file", str(hub), "--stage", "early-warning", "--at", "2026-11-02T20:00:00Z")
    cli("case", "file", str(hub), "--stage", "notification", "--at", "2026-11-04T08:00:00Z")
    cli("case", "fix", str(hub), "--at", "2026-11-05T00:00:00Z")  # a mitigation, no new release
    cli("case", "file", str(hub), "--stage", "final", "--at", "2026-11-10T00:00:00Z")  # closes it
    release("sensor", "4.0")
    sensor = case_of("sensor")
    cli("case", "file", str(sensor), "--stage", "early-warning", "--at", "2026-11-05T18:00:00Z")
    cli("case", "file", str(sensor), "--stage", "notification", "--at", "2026-11-07T09:00:00Z")
    release("sensor", "4.1")  # no glibc in it: the fixing release, final report clock starts
    release("router", "1.0")
    release("gateway", "3.0")
    cli("case", "file", str(case_of("gateway")), "--stage", "early-warning", "--at", "2026-11-19T15:00:00Z")
    release("router", "1.1")
    cli("release", "withdraw", "router", "1.0", "--at", "2026-11-19T10:00:00Z")
    release("camera", "2.0")
    cli("monitor", now="2026-11-20T11:00:00Z")
    cli("pack", str(ledger.folder / "reports" / "router" / "1.1"))  # an evidence pack for router@1.1


@pytest.fixture(scope="session")
def built_ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The fixture ledger, built once for all xdist workers (they share the base temp's parent)."""
    for _p, _v, image, _d, _a in RELEASES:
        if not (IMAGES / image).exists():
            pytest.skip(f"fixture image {image} is not built (run fixtures/build.py)")
    root = tmp_path_factory.getbasetemp().parent
    ledger = Ledger(root / "serve-ledger")
    with (root / "serve-ledger.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ledger.folder / "built").exists():
            shutil.rmtree(ledger.folder, ignore_errors=True)
            ledger.folder.mkdir()
            _build(ledger)
            (ledger.folder / "built").write_text("ok")
    return ledger


def private_copy(ledger: Ledger, target: Path) -> Ledger:
    """A copy of the ledger database (not its reports) for a test that writes."""
    target.mkdir(parents=True, exist_ok=True)
    src = __import__("sqlite3").connect(f"file:{ledger.db}?mode=ro", uri=True)
    dst = __import__("sqlite3").connect(target / "ledger.db")
    src.backup(dst)
    src.close()
    dst.close()
    return Ledger(target)


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT/
    proc: subprocess.Popen
    log: Path  # its stderr

    def stop(self) -> str:
        """Ctrl-C it, as a user does; what it printed on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        text = self.log.read_text()
        self.log.unlink(missing_ok=True)
        return text


def start_server(ledger: Ledger, *extra: str, now: str = NOW) -> Server:
    """`cra-fw serve --port 0` on ``ledger``; returns once it answers."""
    import urllib.request

    # stderr to a file: a pipe nobody reads fills up and blocks the server
    fd, name = tempfile.mkstemp(prefix="cra-fw-serve-", suffix=".log")
    log = Path(name)
    with os.fdopen(fd, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cra_fw", "serve", "--db", str(ledger.db), "--port", "0", *extra],
            env=ledger.env(now),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    line = proc.stdout.readline()  # "serving the ledger PATH at URL (read-only; ...)"; nothing follows
    if " at http://" not in line:
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"cra-fw serve did not start: {line}{log.read_text()}")
    server = Server(line.split(" at ", 1)[1].split()[0], proc, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(server.url, timeout=5) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.2)


def get_json(url: str) -> object:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())
