"""One long-lived process per Dask worker thread that forks one child per image.

Why not run the scan in the Dask worker itself: an image that hangs, crashes the
interpreter (a native parser), or eats memory must cost that image only, and Dask
can neither interrupt a running task nor limit its memory.  Why not a fresh
``cra-fw scan`` process per image: importing the stages costs about a second.
So each worker starts this runner once (``python -m cra_fw.batch.runner``); it
imports cra-fw's stages and then, per request, forks a child that runs the CLI
(``cra_fw.cli.main``) exactly as ``cra-fw scan`` would, in its own session,
with its output on a log file.  The runner enforces the wall-clock timeout and a
resident-memory limit on the child's whole process tree and reports how it ended
and its peak memory (``wait4``).  Both runner and child die with their parent.

Protocol: one JSON object per line on stdin (``argv``, ``log``, ``timeout``,
``memory``), one JSON object per line back.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1
# imported before forking so that children start warm
PRELOAD = (
    "cra_fw.cli.scan",
    "cra_fw.cli.verify",
    "cra_fw.pipeline",
    "cra_fw.unpack.unblob_backend",
    "cra_fw.inventory",
    "cra_fw.identify",
    "cra_fw.checks",
    "cra_fw.bundles",
    "cra_fw.vulns",
    "cra_fw.report.cyclonedx",
    "cra_fw.report.spdx",
    "cra_fw.report.sarif",
    "cra_fw.report.html",
    "cra_fw.vulns.vex",
    "cra_fw.gate",
)


@dataclass(frozen=True)
class RunOutcome:
    """How one child ended."""

    exit_status: int | None  # None when it was killed or died of a signal
    signal: int | None = None
    reason: str = ""  # "" (ended by itself), "timeout", "memory", "runner"
    seconds: float = 0.0
    peak_rss: int = 0  # bytes, the largest process of the child's tree (wait4)
    log_tail: str = ""
    cpu_seconds: float = 0.0  # user + system time of the child and every descendant it reaped (wait4)

    @property
    def describe(self) -> str:
        if self.reason == "timeout":
            return f"timed out after {self.seconds:.0f} s"
        if self.reason == "memory":
            return f"killed: used more than its memory limit (peak {self.peak_rss >> 20} MiB)"
        if self.reason == "runner":
            return f"the worker's scan runner failed: {self.log_tail}"
        if self.signal:
            name = (
                signal.Signals(self.signal).name if self.signal in set(signal.Signals) else str(self.signal)
            )
            return f"crashed ({name})"
        return f"exit status {self.exit_status}"


def _pdeathsig(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_rss(pid: int) -> int:
    import psutil

    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _kill_tree(pid: int) -> None:
    import psutil

    procs = _tree(pid)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _tail(path: str, limit: int = 600) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _child(argv: list[str], log: str) -> None:
    """In the forked child: run the CLI with output on ``log``; never return."""
    status = 70
    try:
        os.setsid()
        _pdeathsig(signal.SIGKILL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        from cra_fw.cli import main

        try:
            main.main(args=argv, prog_name="cra-fw", standalone_mode=True)
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException as exc:  # noqa: BLE001 - the child must end with a status, whatever happened
        with contextlib.suppress(Exception):
            sys.stderr.write(f"cra-fw batch: {type(exc).__name__}: {exc}\n")
        status = 70
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def run_one(argv: list[str], log: str, timeout: float, memory: int) -> RunOutcome:
    """Fork a child running ``cra-fw ARGV``; wait for it within the limits."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(argv, log)
    reason = ""
    delay, next_mem = 0.02, start + 0.5
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        now = time.monotonic()
        if timeout and now - start > timeout:
            reason = "timeout"
        elif memory and now >= next_mem:
            next_mem = now + 0.5
            if _tree_rss(pid) > memory:
                reason = "memory"
        if reason:
            _kill_tree(pid)
            wpid, status, usage = os.wait4(pid, 0)
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    seconds = time.monotonic() - start
    peak = int(usage.ru_maxrss) * 1024
    cpu = round(usage.ru_utime + usage.ru_stime, 3)
    if os.WIFSIGNALED(status):
        return RunOutcome(None, os.WTERMSIG(status), reason, seconds, peak, _tail(log), cpu)
    return RunOutcome(os.WEXITSTATUS(status), None, reason, seconds, peak, _tail(log), cpu)


def serve() -> int:
    """The runner's main loop (``python -m cra_fw.batch.runner``)."""
    _pdeathsig(signal.SIGTERM)
    # the protocol gets its own descriptor; anything printed by accident goes to stderr
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from cra_fw.unpack import unblob_backend

        unblob_backend.UnblobBackend().prepare()
    proto.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        outcome = run_one(req["argv"], req["log"], float(req["timeout"]), int(req["memory"]))
        proto.write(json.dumps(asdict(outcome)) + "\n")
    return 0


class Runner:
    """The worker's handle on one runner process (started on first use, restarted if it died)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cra_fw.batch.runner"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        reply = self._read(proc, 300.0)
        if reply is None or "ready" not in reply:
            self._stop(proc)
            raise RuntimeError("the scan runner did not start")
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[str], timeout: float) -> dict | None:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        line = proc.stdout.readline()
        return json.loads(line) if line else None

    @staticmethod
    def _stop(proc: subprocess.Popen[str]) -> None:
        with contextlib.suppress(Exception):
            _kill_tree(proc.pid)
            proc.kill()
            proc.wait(10)

    def run(self, argv: list[str], log: Path, timeout: float, memory: int) -> RunOutcome:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        proc = self.proc
        assert proc.stdin is not None
        request = {"argv": argv, "log": str(log), "timeout": timeout, "memory": memory}
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            # the runner enforces ``timeout``; this margin only catches a runner that hangs itself
            reply = self._read(proc, (timeout or 86400.0) + 120.0)
        except (OSError, ValueError) as exc:
            reply = None
            detail = str(exc)
        else:
            detail = "no answer"
        if reply is None:
            self._stop(proc)
            self.proc = None
            return RunOutcome(None, None, "runner", 0.0, 0, detail)
        return RunOutcome(**reply)

    def abort(self) -> None:
        """Kill the runner and whatever it is running (Ctrl-C on the client)."""
        if self.proc is not None:
            self._stop(self.proc)
            self.proc = None


_LOCAL = threading.local()
_ALL: list[Runner] = []
_ALL_LOCK = threading.Lock()


def runner() -> Runner:
    """This thread's runner (a Dask worker may run several task threads)."""
    found = getattr(_LOCAL, "runner", None)
    if found is None:
        found = _LOCAL.runner = Runner()
        with _ALL_LOCK:
            _ALL.append(found)
    return found


def abort_all() -> int:
    """Stop every runner of this process; the number stopped."""
    with _ALL_LOCK:
        runners = list(_ALL)
    for item in runners:
        item.abort()
    return len(runners)


if __name__ == "__main__":
    sys.exit(serve())
