"""Run one extraction in a child process that cannot hurt the scan or the host.

The child is forked (cheap: the backend's modules are already imported), put
in its own process group, limited in address space and file size, and — where
the kernel offers Landlock — allowed to write only inside its output folder.
The parent enforces the time limit and a byte budget, and kills the whole
group (external tools included) when one is exceeded.  A crash, a hang or an
exception in the child becomes an :class:`IsolatedFailure`, never a crash of
the scan.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cra_fw.unpack.safety import DIR_COST


@dataclass(frozen=True)
class IsolatedFailure:
    kind: str  # timeout, crash, exception, budget, files
    message: str


@dataclass(frozen=True)
class Sandboxing:
    landlock: bool


@dataclass(frozen=True)
class TreeSize:
    bytes: int
    entries: int
    file_cut: bool = False  # a file reached the per-file size limit (RLIMIT_FSIZE cut it)


def measure(path: Path, stop_bytes: int, stop_entries: int = 0, largest_at: int = 0) -> TreeSize:
    """Bytes (folders at DIR_COST) and entries under ``path``; stops counting once past a limit."""
    total = entries = 0
    stack = [str(path)]
    while stack:
        cur = stack.pop()
        try:
            with os.scandir(cur) as it:
                for entry in it:
                    entries += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                            total += DIR_COST
                        elif entry.is_file(follow_symlinks=False):
                            size = entry.stat(follow_symlinks=False).st_size
                            if largest_at and size >= largest_at:
                                return TreeSize(total + size, entries, True)
                            total += size
                    except OSError:
                        continue
                    if total > stop_bytes or (stop_entries and entries > stop_entries):
                        return TreeSize(total, entries)
        except OSError:
            continue
    return TreeSize(total, entries)


def _over(watch: Path, byte_budget: int, file_budget: int, largest_at: int = 0) -> IsolatedFailure | None:
    size = measure(watch, byte_budget, file_budget, largest_at)
    if size.file_cut or size.bytes > byte_budget:
        return IsolatedFailure(
            "budget", f"extraction wrote more than {byte_budget} bytes (decompression bomb?)"
        )
    if file_budget and size.entries > file_budget:
        return IsolatedFailure("files", f"extraction wrote more than {file_budget} files and folders")
    return None


def _enter_sandbox(writable: list[Path]) -> bool:
    try:
        from unblob._rust.sandbox import AccessFS, restrict_access
    except ImportError:
        return False
    rules = [AccessFS.read("/"), AccessFS.read_write("/dev/null")]
    for path in writable:
        rules += [
            AccessFS.read_write(str(path)),
            AccessFS.remove_dir(str(path)),
            AccessFS.remove_file(str(path)),
            AccessFS.make_dir(str(path)),
        ]
    try:
        restrict_access(*rules)
    except Exception:  # noqa: BLE001 - kernel without Landlock: limits still apply
        return False
    return True


def run_isolated(
    func: Callable[..., Any],
    args: tuple[Any, ...],
    *,
    writable: list[Path],
    timeout: float,
    max_memory: int,
    max_file_size: int,
    byte_budget: int,
    file_budget: int = 0,
    watch: Path | None = None,
) -> tuple[Any | IsolatedFailure, Sandboxing]:
    """Run ``func(*args)`` in a sandboxed child; return its result or an IsolatedFailure."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(rfd)
            os.setpgid(0, 0)
            # extractors chatter on stdout/stderr: the terminal belongs to the scan's progress
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            tmp = writable[0] / ".tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            os.environ["TMPDIR"] = str(tmp)
            landlock = _enter_sandbox(writable)
            try:
                resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
            except (ValueError, OSError):
                pass
            try:
                resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_size, max_file_size))
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
            except (ValueError, OSError):
                pass
            try:
                payload: Any = ("ok", func(*args), landlock)
            except BaseException as exc:  # noqa: BLE001 - report every failure to the parent
                tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
                payload = ("exception", tb[:2000], landlock)
            data = pickle.dumps(payload)
            with os.fdopen(wfd, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)

    # parent
    os.close(wfd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    next_check = time.monotonic() + 1.0
    failure: IsolatedFailure | None = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failure = IsolatedFailure("timeout", f"extractor exceeded the {timeout:.0f}s time limit")
                break
            ready, _, _ = select.select([rfd], [], [], min(remaining, 0.5))
            if ready:
                block = os.read(rfd, 1 << 20)
                if not block:
                    break
                chunks.append(block)
            if watch is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                failure = _over(watch, byte_budget, file_budget)
                if failure is not None:
                    break
    finally:
        os.close(rfd)
        if failure is not None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
        # external tools the child started may still run in its group
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if failure is not None:
        return failure, Sandboxing(False)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return IsolatedFailure("crash", f"extractor died with signal {signal.Signals(sig).name}"), Sandboxing(
            False
        )
    try:
        kind, value, landlock = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001
        return IsolatedFailure("crash", "extractor ended without a result"), Sandboxing(False)
    if kind == "exception":
        return IsolatedFailure("exception", value), Sandboxing(landlock)
    if watch is not None:
        over = _over(watch, byte_budget, file_budget, max_file_size)
        if over is not None:
            return over, Sandboxing(landlock)
    return value, Sandboxing(landlock)
