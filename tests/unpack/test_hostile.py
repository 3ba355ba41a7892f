"""Hostile inputs: nothing written outside the workspace, bounded time, a finding, a documented exit status.

Exit statuses (docs/exit-status.md): 0 analysed, 3 nothing in the image could be analysed.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import scan_cli

BACKENDS = ["unblob", "binwalk"]


def snapshot(root: Path, exclude: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == exclude or exclude in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            if Path(full) != exclude:
                out.add(full)
    return out


@pytest.fixture
def arena(tmp_path: Path):
    """A tmp tree: the hostile input, a canary folder beside the output, and the output folder."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "secret").write_text("host secret\n")
    out = tmp_path / "out"
    return tmp_path, canary, out


def assert_contained(tmp_path: Path, out: Path, before: set[str], abs_targets: list[Path] = ()) -> None:
    after = snapshot(tmp_path, out)
    assert after == before, f"written outside the output folder: {sorted(after - before)}"
    for target in abs_targets:
        assert not target.exists(), f"{target} was written"
    assert (tmp_path / "canary" / "secret").read_text() == "host secret\n"


def _tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        # a normal member first, so the archive is clearly a real one
        info = tarfile.TarInfo("ok.txt")
        data = b"fine\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _no_traceback(run) -> None:
    assert "Traceback" not in run.stderr, run.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_dotdot_and_absolute_paths(arena, backend):
    tmp_path, canary, out = arena
    abs_target = tmp_path / "abs-escape.txt"
    image = tmp_path / "evil.tar"
    image.write_bytes(
        _tar_bytes(
            [
                _file("../../canary/pwned", b"x"),
                _file("../escape.txt", b"x"),
                _file(str(abs_target), b"x"),
            ]
        )
    )
    before = snapshot(tmp_path, out)
    start = time.monotonic()
    run = scan_cli(image, out, "--extractor", backend)
    assert time.monotonic() - start < 120
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert_contained(tmp_path, out, before, [abs_target, canary / "pwned"])
    report = run.report
    paths = {f["path"] for f in report["files"]}
    assert "/ok.txt" in paths
    assert not any(".." in p.split("/") for p in paths)


@pytest.mark.parametrize("backend", BACKENDS)
def test_symlink_out_then_write_through_it(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "evil.tar"
    image.write_bytes(
        _tar_bytes(
            [
                _link("escape", str(canary), tarfile.SYMTYPE),
                _file("escape/pwned", b"written through a symlink\n"),
                _link("rel", "../../../../../../canary", tarfile.SYMTYPE),
                _file("rel/pwned2", b"x"),
            ]
        )
    )
    before = snapshot(tmp_path, out)
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert_contained(tmp_path, out, before, [canary / "pwned", canary / "pwned2"])
    # symlinks are recorded, never followed: the canary's contents are not inventoried
    import hashlib

    files = run.report["files"]
    assert hashlib.sha256(b"host secret\n").hexdigest() not in {f["sha256"] for f in files}
    assert not any(f["path"].endswith("/secret") for f in files)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hardlink_out_of_tree(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "evil.tar"
    image.write_bytes(
        _tar_bytes(
            [
                _link("stolen", str(canary / "secret"), tarfile.LNKTYPE),
                _link("stolen2", "../../canary/secret", tarfile.LNKTYPE),
            ]
        )
    )
    before = snapshot(tmp_path, out)
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert run.returncode == 0, run.stderr
    assert_contained(tmp_path, out, before)
    report = run.report
    # the host file's contents never reach the report
    import hashlib

    real = hashlib.sha256(b"host secret\n").hexdigest()
    assert real not in {f["sha256"] for f in report["files"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_symlink_loop(arena, backend):
    tmp_path, canary, out = arena
    if not shutil.which("mksquashfs"):
        pytest.skip("mksquashfs missing")
    root = tmp_path / "looproot"
    root.mkdir()
    (root / "hello").write_text("hi\n")
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    os.symlink("self", root / "self")
    image = tmp_path / "loop.sqfs"
    subprocess.run(["mksquashfs", str(root), str(image), "-comp", "gzip", "-noappend", "-quiet"], check=True)
    shutil.rmtree(root)
    before = snapshot(tmp_path, out)
    start = time.monotonic()
    run = scan_cli(image, out, "--extractor", backend)
    assert time.monotonic() - start < 120
    _no_traceback(run)
    assert run.returncode == 0
    assert_contained(tmp_path, out, before)
    links = {f["path"]: f["link_target"] for f in run.report["files"] if f["kind"] == "symlink"}
    assert links == {"/a": "b", "/b": "a", "/self": "self"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_decompression_bomb(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "bomb.gz"
    # 200 MiB of zeros in ~200 KiB; with --max-ratio 20 the branch must stop
    with gzip.open(image, "wb", compresslevel=9) as fh:
        block = b"\0" * (1 << 20)
        for _ in range(200):
            fh.write(block)
    before = snapshot(tmp_path, out)
    start = time.monotonic()
    run = scan_cli(image, out, "--extractor", backend, "--max-ratio", "20")
    elapsed = time.monotonic() - start
    _no_traceback(run)
    assert elapsed < 120
    assert_contained(tmp_path, out, before)
    rules = {f["rule_id"] for f in run.report["findings"]}
    assert "unpack.limit.bytes" in rules
    # nothing of the bomb is left on disk
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    assert total < 50 * 1024 * 1024
    assert run.returncode in (0, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesting_bomb(arena, backend):
    tmp_path, canary, out = arena
    data = b"the innermost file\n" * 10
    for _ in range(12):
        data = gzip.compress(data, mtime=0)
    image = tmp_path / "nested.gz"
    image.write_bytes(data)
    run = scan_cli(image, out, "--extractor", backend, "--max-depth", "5")
    _no_traceback(run)
    assert run.returncode == 0
    report = run.report
    assert max(la["depth"] for la in report["layers"]) <= 5
    assert "unpack.limit.depth" in {f["rule_id"] for f in report["findings"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_squashfs(arena, backend):
    tmp_path, canary, out = arena
    if not shutil.which("mksquashfs"):
        pytest.skip("mksquashfs missing")
    root = tmp_path / "r"
    (root / "etc").mkdir(parents=True)
    rng = random.Random(7)
    for i in range(40):
        (root / "etc" / f"f{i}").write_bytes(rng.randbytes(4000))
    full = tmp_path / "full.sqfs"
    subprocess.run(["mksquashfs", str(root), str(full), "-comp", "xz", "-noappend", "-quiet"], check=True)
    shutil.rmtree(root)
    image = tmp_path / "trunc.sqfs"
    image.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    before = snapshot(tmp_path, out)
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert_contained(tmp_path, out, before)
    assert run.returncode in (0, 3)
    assert run.report["findings"], "a truncated image must leave a finding"
    assert len(run.stderr.strip().splitlines()) <= 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_bytes(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "random.bin"
    image.write_bytes(random.Random(1).randbytes(256 * 1024))
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert run.returncode == 3
    assert "no known format" in run.stderr
    report = run.report
    assert [la["format"] for la in report["layers"]] == ["raw", "unknown"]
    assert report["layers"][1]["entropy"] > 7.9
    assert "unpack.high-entropy" in {f["rule_id"] for f in report["findings"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_length(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "empty.bin"
    image.write_bytes(b"")
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert run.returncode == 3
    assert [f["rule_id"] for f in run.report["findings"]] == ["unpack.empty-input"]


def test_missing_file_is_one_line(tmp_path):
    run = scan_cli(tmp_path / "nope.bin", tmp_path / "out")
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "no such file" in run.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_zip_slip(arena, backend):
    tmp_path, canary, out = arena
    image = tmp_path / "slip.zip"
    with zipfile.ZipFile(image, "w") as zf:
        zf.writestr("ok.txt", "fine\n")
        zf.writestr("../../canary/zipped", "x")
        zf.writestr("/" + str(tmp_path / "zabs").lstrip("/"), "x")
    before = snapshot(tmp_path, out)
    run = scan_cli(image, out, "--extractor", backend)
    _no_traceback(run)
    assert_contained(tmp_path, out, before, [canary / "zipped"])
    assert "/ok.txt" in {f["path"] for f in run.report["files"]}
