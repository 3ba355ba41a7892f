"""Shared test helpers: run the real CLI, load reports, find fixture images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_IMAGES = ROOT / "fixtures" / "images"
SHARED_FIRMWARE = ROOT.parent / "shared" / "firmware"


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    outdir: Path

    @property
    def report(self) -> dict:
        return json.loads((self.outdir / "report.json").read_text())


def run_cli(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m cra_fw ARGS` as a real subprocess."""
    full_env = dict(os.environ)
    full_env.setdefault("XDG_CACHE_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "cra-fw-test-cache"))
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cra_fw", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )


def scan_cli(image: Path, outdir: Path, *extra: str, timeout: float = 300, command: str = "scan") -> CliRun:
    proc = run_cli(command, str(image), "-o", str(outdir), "-q", *extra, timeout=timeout)
    return CliRun(proc.returncode, proc.stdout, proc.stderr, outdir)


@pytest.fixture(scope="session")
def ground_truth() -> dict:
    path = FIXTURE_IMAGES / "ground-truth.json"
    if not path.exists():
        pytest.skip("fixtures/images/ground-truth.json is missing: run `python fixtures/build.py`")
    return json.loads(path.read_text())
