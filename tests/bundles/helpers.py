"""Shared helpers of the bundle tests: fixture cases and running real tools."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fixtures" / "bundles" / "out"
SHARED = ROOT.parent / "shared" / "firmware"


def cases() -> list[dict]:
    path = OUT / "expected.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())


def case_id(case: dict) -> str:
    sig = f"+{Path(case['signature']).name}" if case["signature"] else ""
    return f"{case['path']}{sig}@{'+'.join(Path(t).name for t in case['trust'])}"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} is not installed (apt-get install -y $(cat .ci/apt-packages.txt))")
    return found


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, timeout=120, check=False, cwd=cwd)
