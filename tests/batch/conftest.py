"""A real Dask cluster on localhost (`dask scheduler` + two `dask worker` processes), a feed database,
and the report normaliser of scripts/report_snapshot.py."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).parent / "dask"


def snapshot_module():
    """scripts/report_snapshot.py (normalise, OUTPUTS, build_feed_db), imported from the checkout."""
    spec = importlib.util.spec_from_file_location("report_snapshot", ROOT / "scripts" / "report_snapshot.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def feeds_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture feeds (NVD, OSV, KEV, EPSS) imported by the real CLI."""
    path = tmp_path_factory.mktemp("batch-feeds") / "feeds.db"
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    snapshot_module().build_feed_db(path, env)
    return path


@dataclass
class Cluster:
    address: str
    workdir: Path
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [
                str(DASK),
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",  # one process per worker: killing it loses the worker
                "--no-dashboard",
                "--name",
                name,
                "--local-directory",
                str(self.workdir / name),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / f"{name}.log", "ab"),  # noqa: SIM115 - lives as long as the worker
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def alive_workers(self) -> dict[str, int]:
        """Worker address -> pid, as the scheduler sees them."""
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            return {addr: int(pid) for addr, pid in client.run(os.getpid).items()}

    def wait_workers(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.alive_workers()) >= count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{count} Dask workers did not join {self.address}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, stopped after the module."""
    workdir = tmp_path_factory.mktemp("dask")
    scheduler_file = workdir / "scheduler.json"
    scheduler = subprocess.Popen(
        [
            str(DASK),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "scheduler.log", "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        if scheduler.poll() is not None or time.monotonic() > deadline:
            _stop(scheduler)
            raise RuntimeError((workdir / "scheduler.log").read_text()[-2000:])
        time.sleep(0.2)
    import json

    address = json.loads(scheduler_file.read_text())["address"]
    cluster = Cluster(address, workdir, scheduler)
    try:
        cluster.start_worker("w1")
        cluster.start_worker("w2")
        cluster.wait_workers(2)
        yield cluster
    finally:
        for proc in cluster.workers:
            _stop(proc)
        _stop(scheduler)
