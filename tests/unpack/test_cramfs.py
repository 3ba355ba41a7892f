"""cramfs in both byte orders, made here by util-linux's mkfs.cramfs (-N big / -N little).

Ground truth is the tree that went in: Debian's own /usr/bin/true (a real ELF), text files,
a 0600 file, an empty file, a file of several 4 KiB pages, a hard link, a symlink and a symlink
that leaves the folder (kept as a symlink, never followed), a character device and a FIFO
(recorded by the reader, never created).  Built as root when possible (device nodes need it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import scan_cli

MKFS = shutil.which("mkfs.cramfs") or "/sbin/mkfs.cramfs"
needs_mkfs = pytest.mark.skipif(not os.path.exists(MKFS), reason="mkfs.cramfs (util-linux) is missing")


def _tree(tmp: Path) -> tuple[Path, dict[str, tuple]]:
    src = tmp / "src"
    (src / "bin").mkdir(parents=True)
    (src / "etc").mkdir()
    (src / "www" / "cgi").mkdir(parents=True)
    shutil.copy("/usr/bin/true", src / "bin" / "true")
    os.link(src / "bin" / "true", src / "bin" / "false-link")
    os.symlink("true", src / "bin" / "sh")
    os.symlink("../../etc/passwd", src / "www" / "cgi" / "escape")
    (src / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (src / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chmod(src / "etc" / "shadow", 0o600)
    (src / "etc" / "empty").write_bytes(b"")
    (src / "www" / "big.bin").write_bytes(bytes(range(256)) * 64 + os.urandom(9000))
    specials = 0
    if os.geteuid() == 0:
        os.mknod(src / "etc" / "console", 0o600 | 0o020000, os.makedev(5, 1))
        os.mkfifo(src / "etc" / "initctl")
        specials = 2
    want: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = "/" + str(full.relative_to(src))
            if full.is_symlink():
                want[rel] = ("symlink", os.readlink(full))
            elif full.is_dir():
                want[rel] = ("directory",)
            elif full.is_file():
                data = full.read_bytes()
                want[rel] = (
                    "file",
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    full.stat().st_mode & 0o7777,
                )
    assert specials == 0 or len(want) == 12  # 4 folders, 6 files, 2 symlinks; the 2 specials are not listed
    return src, want


@needs_mkfs
@pytest.mark.parametrize("endian", ["big", "little"])
def test_cramfs_made_by_mkfs_cramfs_reads_back_exactly(tmp_path, endian):
    src, want = _tree(tmp_path)
    image = tmp_path / f"root-{endian}.cramfs"
    subprocess.run(
        [MKFS, "-N", endian, "-n", "cra-fw-test", str(src), str(image)], check=True, capture_output=True
    )
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert run.returncode == 0, run.stderr
    report = run.report
    (layer,) = [la for la in report["layers"] if la["format"] == "cramfs"]
    assert (layer["status"], layer["note"], layer["extractor"]) == ("extracted", "", "cra-fw")
    assert layer["details"]["endianness"] == endian
    assert layer["details"]["name"] == "cra-fw-test"
    got = {f["path"]: f for f in report["files"] if f["layer_id"] == layer["id"]}
    assert set(got) == set(want)
    for path, expected in want.items():
        item = got[path]
        if expected[0] == "symlink":
            assert (item["kind"], item["link_target"]) == ("symlink", expected[1]), path
        elif expected[0] == "directory":
            assert item["kind"] == "directory", path
        else:
            assert (item["size"], item["sha256"], item["mode"] & 0o7777) == expected[1:], path


@needs_mkfs
def test_damaged_cramfs_block_is_recorded(tmp_path):
    src, _want = _tree(tmp_path)
    image = tmp_path / "root.cramfs"
    subprocess.run([MKFS, "-N", "little", str(src), str(image)], check=True, capture_output=True)
    raw = bytearray(image.read_bytes())
    # zero the middle of the image, where the file data lives; the superblock and root stay
    middle = len(raw) // 2
    raw[middle : middle + 4096] = bytes(4096)
    image.write_bytes(raw)
    run = scan_cli(image, tmp_path / "out", command="unpack")
    assert "Traceback" not in run.stderr
    assert run.returncode in (0, 3), run.stderr
    (layer,) = [la for la in run.report["layers"] if la["format"] == "cramfs"]
    assert "unreadable" in layer["note"] or layer["status"] == "failed"
