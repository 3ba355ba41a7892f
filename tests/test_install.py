"""Install paths: the data ships in the package, and nothing needs a prepared HOME.

The full wheel round trip (build, install in a fresh venv, scan with an empty HOME)
runs in `.ci/wheel-check`; these tests keep the pieces it relies on from drifting.
"""

from __future__ import annotations

import fnmatch
import importlib.resources
import io
import os
import tarfile
import tomllib
from pathlib import Path

import pytest

from cra_fw.paths import schema_path, signatures_dir
from tests.conftest import ROOT, run_cli


def _globs() -> list[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return doc["tool"]["setuptools"]["package-data"]["cra_fw.signatures"]


def test_every_signature_file_is_package_data() -> None:
    """A data file no package-data glob names would be missing from the wheel."""
    globs = _globs()
    data = [p for p in (ROOT / "signatures").rglob("*") if p.is_file() and p.name != "__init__.py"]
    assert len(data) > 100
    for path in data:
        rel = path.relative_to(ROOT / "signatures").as_posix()
        # setuptools' '**/' also matches files at the top of the package
        assert any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(rel, g.removeprefix("**/")) for g in globs), rel


def test_data_is_found_through_importlib_resources(monkeypatch) -> None:
    monkeypatch.delenv("CRA_FW_SIGNATURES", raising=False)
    assert signatures_dir() == Path(str(importlib.resources.files("cra_fw.signatures")))
    assert (signatures_dir() / "formats" / "formats.toml").is_file()
    assert schema_path("report.schema.json").is_file()
    monkeypatch.setenv("CRA_FW_SIGNATURES", "/elsewhere")
    assert signatures_dir() == Path("/elsewhere")


def test_binwalk_runs_with_an_empty_home_and_leaves_it_empty(tmp_path: Path) -> None:
    """Debian's binwalk wants ~/.config/binwalk: the sandbox gives it one of its own."""
    home = tmp_path / "home"
    home.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("motd", "hostname"):
            info = tarfile.TarInfo(name)
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
    image = tmp_path / "small.tar"
    image.write_bytes(buf.getvalue() + b"\0" * 4096)
    out = tmp_path / "out"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env = {k: v for k, v in env.items() if v}
    proc = run_cli("unpack", str(image), "-o", str(out), "-q", "--extractor", "binwalk", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    import json

    report = json.loads((out / "report.json").read_text())
    assert {"/motd", "/hostname"} <= {f["path"] for f in report["files"]}
    assert sorted(os.listdir(home)) == []


@pytest.mark.parametrize("script", ["scripts/test", "scripts/demo", ".ci/run", ".ci/wheel-check"])
def test_scripts_are_executable(script: str) -> None:
    assert os.access(ROOT / script, os.X_OK)
