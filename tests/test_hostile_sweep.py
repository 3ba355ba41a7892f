"""The hostile-input sweep: every input is generated here with real tools, scanned with the
real CLI, and must end with no traceback, nothing written outside the output folder, no
work folder left behind, and a finding for every branch a limit or a failure stopped.

Each case is one of the reproducers of issue 13 (or its class), with the exact findings
it must produce.  Inputs stay small so the sweep runs in about a minute on two cores.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import shutil
import struct
import subprocess
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from cra_fw.fstree import remove_tree
from tests.conftest import SHARED_FIRMWARE, CliRun, scan_cli

BACKENDS = ["unblob", "binwalk"]
STOPPED = ("limited", "failed", "partial", "unsupported")


def need(*tools: str) -> None:
    for tool in tools:
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")


def snapshot(root: Path, exclude: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == exclude:
            dirnames[:] = []
            continue
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != exclude]
        for name in filenames + dirnames:
            full = os.path.join(dirpath, name)
            out[full] = os.lstat(full).st_size
    return out


def hostile_scan(tmp_path: Path, image: Path, *args: str, command: str = "scan") -> tuple[CliRun, dict]:
    """Scan ``image`` into tmp_path/out and check what every hostile input must satisfy."""
    out = tmp_path / "out"
    before = snapshot(tmp_path, out)
    run = scan_cli(image, out, *args, command=command, timeout=300)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode in (0, 1, 3), run.stderr
    assert len(run.stderr.strip().splitlines()) <= 12, run.stderr
    assert snapshot(tmp_path, out) == before, "written outside the output folder"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".work-")], "work folder left behind"
    report = run.report
    chains = {f["location"]["layer_chain"][-1] for f in report["findings"] if f["location"]["layer_chain"]}
    for layer in report["layers"]:
        if layer["status"] in STOPPED:
            assert f"{layer['id']}:{layer['format']}" in chains, f"no finding for stopped {layer}"
    return run, report


def rules(report: dict) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["location"]["path"]) for f in report["findings"]}


def rule_ids(report: dict) -> set[str]:
    return {f["rule_id"] for f in report["findings"]}


def assessment(report: dict, topic: str) -> dict:
    return next(a for a in reversed(report["assessments"]) if a["topic"] == topic)


# ---------------------------------------------------------------- archives that reach outside


def _tar(members: list[tuple[str, str, bytes | str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = str(data)
                tar.addfile(info)
    return buf.getvalue()


def _newc(members: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive, written by hand so member order and types are exactly these."""
    out = b""
    for ino, (name, mode, data) in enumerate([*members, ("TRAILER!!!", 0, b"")], 1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % v for v in fields) + raw
        out += b"\0" * (-len(out) % 4) + data + b"\0" * (-len(data) % 4)
    return out + b"\0" * (-len(out) % 512)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tar_members_that_reach_outside_are_findings_naming_them(tmp_path, backend):
    canary = tmp_path / "canary"
    image = tmp_path / "evil.tar"
    image.write_bytes(
        _tar(
            [
                ("ok.txt", "file", b"fine\n"),
                ("../../canary-dotdot", "file", b"x"),
                (str(tmp_path / "canary-abs"), "file", b"x"),
                ("lnk", "symlink", "../../../../.."),
                ("lnk/through", "file", b"x"),
                ("stolen", "hardlink", "/etc/passwd"),
                ("bin/sh", "symlink", "/bin/busybox"),  # absolute symlinks are normal in a rootfs
            ]
        )
    )
    run, report = hostile_scan(tmp_path, image, "--extractor", backend)
    assert not canary.exists() and not (tmp_path / "canary-abs").exists()
    found = {(r, p) for r, p in rules(report) if r.startswith("unpack.") and r != "unpack.retried"}
    assert found == {
        ("unpack.path-traversal", "../../canary-dotdot"),
        ("unpack.absolute-path", str(tmp_path / "canary-abs")),
        ("unpack.symlink-out", "lnk"),
        ("unpack.write-through-symlink", "lnk/through"),
        ("unpack.hardlink-out", "stolen"),
    }
    links = {f["path"]: f["link_target"] for f in report["files"] if f["kind"] == "symlink"}
    assert links.get("/bin/sh") == "/bin/busybox"  # the target the archive stored, not a rewrite
    assert "/ok.txt" in {f["path"] for f in report["files"]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_zip_keeps_absolute_symlink_targets_and_names_climbing_links(tmp_path, backend):
    image = tmp_path / "links.zip"
    with zipfile.ZipFile(image, "w") as zf:
        zf.writestr("ok.txt", "fine\n")
        for name, target in (("etc/shadowlink", "/etc/shadow"), ("up", "../../../../etc")):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777) << 16
            zf.writestr(info, target)
    run, report = hostile_scan(tmp_path, image, "--extractor", backend)
    links = {f["path"]: f["link_target"] for f in report["files"] if f["kind"] == "symlink"}
    assert links["/etc/shadowlink"] == "/etc/shadow"
    assert str(tmp_path) not in json.dumps(report["files"])  # never the host path of the work folder
    assert ("unpack.symlink-out", "up") in rules(report)
    assert assessment(report, "unpack")["status"] == "complete"


@pytest.mark.parametrize("backend", BACKENDS)
def test_cpio_symlink_then_file_is_retried_and_its_root_shell_found(tmp_path, backend):
    """unblob aborts on `a -> /nonexistent` then `a/x` (FileExistsError); the rest of the
    archive must still be analysed: the other backend extracts it."""
    image = tmp_path / "initramfs.cpio"
    image.write_bytes(
        _newc(
            [
                ("a", 0o120777, b"/nonexistent"),
                ("a/x", 0o100644, b"hello\n"),
                ("etc", 0o040755, b""),
                ("etc/passwd", 0o100644, b"root::0:0:root:/root:/bin/sh\n"),
            ]
        )
    )
    run, report = hostile_scan(tmp_path, image, "--extractor", backend, "--fail-on", "critical")
    assert run.returncode == 1, run.stderr
    found = rules(report)
    assert ("credentials.empty-password", "/etc/passwd") in found
    assert ("unpack.write-through-symlink", "a/x") in found
    cpio = next(la for la in report["layers"] if la["format"] == "cpio")
    assert cpio["status"] == "extracted"
    if backend == "unblob":
        assert cpio["extractor"] == "binwalk"
        assert ("unpack.retried", "initramfs.cpio") in found
    links = {f["path"]: f["link_target"] for f in report["files"] if f["kind"] == "symlink"}
    assert links == {"/a": "/nonexistent"}


# ---------------------------------------------------------------- bombs


def _bombs(tmp_path: Path) -> dict[str, bytes]:
    """64 MiB of zeros in every stream codec the extractors handle."""
    need("zstd", "lz4", "lzop")
    zeros = tmp_path / "zeros"
    with open(zeros, "wb") as fh:
        fh.truncate(64 << 20)
    out = {
        "bomb.gz": gzip.compress(zeros.read_bytes(), 9, mtime=0),
        "bomb.xz": lzma.compress(zeros.read_bytes()),
        "bomb.lzma": lzma.compress(zeros.read_bytes(), format=lzma.FORMAT_ALONE),
        "bomb.bz2": bz2.compress(zeros.read_bytes()),
        "bomb.zlib": zlib.compress(zeros.read_bytes(), 9),
    }
    for name, cmd in (
        ("bomb.zst", ["zstd", "-q", "-c", "-19"]),
        ("bomb.lz4", ["lz4", "-q", "-c", "-9"]),
        ("bomb.legacy.lz4", ["lz4", "-q", "-c", "-l", "-9"]),
        ("bomb.lzo", ["lzop", "-c", "-9"]),
    ):
        out[name] = subprocess.run([*cmd, str(zeros)], capture_output=True, check=True).stdout
    zeros.unlink()
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_bombs_of_every_codec_stop_with_a_finding(tmp_path, backend):
    bombs = _bombs(tmp_path)
    image = tmp_path / "bombs.tar"
    image.write_bytes(_tar([(name, "file", data) for name, data in sorted(bombs.items())]))
    run, report = hostile_scan(tmp_path, image, "--extractor", backend, "--max-ratio", "20")
    stopped = {f["location"]["path"] for f in report["findings"] if f["rule_id"] == "unpack.limit.bytes"}
    recognised = {la["parent_path"] for la in report["layers"] if la["depth"] == 2}
    # every bomb a backend recognises is stopped; unblob and binwalk recognise different codecs
    assert recognised, report["layers"]
    assert recognised <= stopped
    must = {"/bomb.gz", "/bomb.xz", "/bomb.bz2"} | (
        {"/bomb.zst", "/bomb.lz4", "/bomb.lzma"} if backend == "unblob" else set()
    )
    assert must <= stopped, stopped
    total = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert total < 32 << 20


@pytest.mark.parametrize("backend", BACKENDS)
def test_zstd_sparse_bomb_is_a_bomb_not_an_empty_file(tmp_path, backend):
    """zstd writes zeros as a sparse file, hits the file-size limit and leaves 0 bytes."""
    need("zstd")
    image = tmp_path / "b.zst"
    zeros = subprocess.Popen(["head", "-c", str(1 << 30), "/dev/zero"], stdout=subprocess.PIPE)
    with open(image, "wb") as out:
        subprocess.run(["zstd", "-q", "-c"], stdin=zeros.stdout, stdout=out, check=True)
    zeros.wait()
    run, report = hostile_scan(tmp_path, image, "--extractor", backend)
    assert run.returncode == 3
    assert not any(f["kind"] == "data" and f["size"] == 0 for f in report["files"])
    if backend == "binwalk":  # binwalk 2.3 knows no zstd: nothing analysed, and it says so
        assert "no known format found" in run.stderr
        return
    assert "unpack.limit.bytes" in rule_ids(report)
    assert "bomb" in run.stderr


def test_folders_count_against_the_byte_budget(tmp_path):
    image = tmp_path / "dirs.tar"
    image.write_bytes(_tar([(f"d{i:04d}", "dir", b"") for i in range(400)]))
    run, report = hostile_scan(tmp_path, image, "--max-ratio", "4")
    assert "unpack.limit.bytes" in rule_ids(report)


# ---------------------------------------------------------------- deep and wide trees, loops


def _mksquashfs(root: Path, image: Path, *extra: str) -> None:
    need("mksquashfs")
    subprocess.run(
        ["mksquashfs", str(root), str(image), "-noappend", "-quiet", "-no-progress", *extra],
        check=True,
        capture_output=True,
    )


def _deep_tree(root: Path, depth: int, leaf: bytes) -> None:
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    leaf_fd = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(leaf_fd, leaf)
    os.close(leaf_fd)
    os.close(fd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_1200_nested_folders_no_recursion_error(tmp_path, backend):
    """os.walk and shutil.rmtree recurse: 1,200 levels crashed the walker and the cleanup."""
    root = tmp_path / "tree"
    _deep_tree(root, 1200, b"deepest\n")
    image = tmp_path / "deep.sqfs"
    _mksquashfs(root, image)
    remove_tree(root)  # shutil.rmtree recurses: RecursionError at this depth
    run, report = hostile_scan(tmp_path, image, "--extractor", backend, "--max-ratio", "2000")
    assert run.returncode == 0
    leaf = "/" + "/".join(["d"] * 1200) + "/leaf"
    assert leaf in {f["path"] for f in report["files"]}


def test_deeper_than_path_max_is_pruned_with_a_finding(tmp_path):
    root = tmp_path / "tree"
    _deep_tree(root, 1900, b"too deep\n")  # 3,800 bytes of path below the layer root
    image = tmp_path / "deeper.sqfs"
    _mksquashfs(root, image)
    remove_tree(root)
    run, report = hostile_scan(tmp_path, image, "--max-ratio", "4000")
    assert "unpack.limit.tree-depth" in rule_ids(report)
    assert max(len(f["path"]) for f in report["files"]) <= 3100


@pytest.mark.parametrize("backend", BACKENDS)
def test_ext2_directory_hardlink_loop(tmp_path, backend):
    """debugfs rdump follows a directory hard link forever; the cleanup then crashed."""
    need("mke2fs", "debugfs")
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_text("hi\n")
    image = tmp_path / "loop.ext2"
    subprocess.run(["mke2fs", "-q", "-t", "ext2", "-d", str(root), str(image), "1M"], check=True)
    subprocess.run(["debugfs", "-w", "-R", "link a a/b/loop", str(image)], check=True, capture_output=True)
    shutil.rmtree(root)
    run, report = hostile_scan(tmp_path, image, "--extractor", backend, "--extractor-timeout", "60")
    assert "unpack.limit.tree-depth" in rule_ids(report)
    assert "/a/b/f" in {f["path"] for f in report["files"]}


def test_max_files_is_enforced_during_extraction(tmp_path):
    root = tmp_path / "wide"
    root.mkdir()
    for i in range(3000):
        (root / f"f{i:05d}").write_bytes(b"x")
    image = tmp_path / "wide.sqfs"
    _mksquashfs(root, image)
    shutil.rmtree(root)
    run, report = hostile_scan(tmp_path, image, "--max-files", "500", "--max-ratio", "100000")
    assert run.returncode == 3
    assert len(report["files"]) <= 500
    assert "unpack.limit.files" in rule_ids(report)
    assert "500 files" in run.stderr


# ---------------------------------------------------------------- malformed ELF


def _elf(needed: int, tail: bytes = b"") -> bytes:
    """A 32-bit ARM executable whose PT_DYNAMIC lists ``needed`` distinct DT_NEEDED names."""
    base = 0x10000
    interp = b"/lib/ld-linux.so.3\0"
    names = b"\0" + b"".join(b"lib%05d.so\0" % i for i in range(needed))
    strtab = 52 + 3 * 32 + len(interp)
    dyn = (strtab + len(names) + 3) & ~3
    dynamic = b"".join(struct.pack("<II", 1, 1 + i * 12) for i in range(needed))
    dynamic += struct.pack("<IIIIII", 5, base + strtab, 10, len(names), 0, 0)
    size = dyn + len(dynamic)
    head = b"\x7fELF\x01\x01\x01" + b"\0" * 9
    head += struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, base, 52, 0, 0x5000000, 52, 32, 3, 40, 0, 0)
    phdrs = struct.pack("<8I", 3, 52 + 96, base + 52 + 96, 0, len(interp), len(interp), 4, 1)
    phdrs += struct.pack("<8I", 1, 0, base, base, size, size, 5, 0x1000)
    phdrs += struct.pack("<8I", 2, dyn, base + dyn, 0, len(dynamic), len(dynamic), 6, 4)
    body = head + phdrs + interp + names
    return body + b"\0" * (dyn - len(body)) + dynamic + tail


def test_dt_needed_is_capped_per_file(tmp_path):
    """Identical files with 4,094 DT_NEEDED each made a 509 MB report."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    elf = _elf(4094)
    for i in range(60):
        (root / "bin" / f"tool{i:03d}").write_bytes(elf)
    image = tmp_path / "needed.sqfs"
    _mksquashfs(root, image, "-comp", "xz")
    shutil.rmtree(root)
    run, report = hostile_scan(tmp_path, image, "--max-ratio", "100000")
    elves = [f for f in report["files"] if f["elf"]]
    assert len(elves) == 60
    assert all(len(f["elf"]["needed"]) == 256 and f["elf"]["capped"] == ["needed:4094"] for f in elves)
    assert "inventory.limit.record" in rule_ids(report)
    assert (tmp_path / "out" / "report.json").stat().st_size < 4 << 20


def test_malformed_elf_files(tmp_path):
    good = _elf(3)
    cases = {
        "truncated": good[:60],
        "phoff-beyond-end": good[:28] + struct.pack("<I", 1 << 30) + good[32:],
        "huge-phnum": good[:44] + struct.pack("<H", 0xFFFF) + good[46:],
        "dynamic-outside": good[: len(good) - 24] + struct.pack("<IIIIII", 5, 0xFFFFFFF0, 10, 1 << 31, 0, 0),
        "needed-offsets-past-strtab": good[:-24] + struct.pack("<IIIIII", 1, 1 << 30, 5, 0x10000, 0, 0),
        "64-bit-header-in-32-bytes": b"\x7fELF\x02\x01\x01" + b"\0" * 25,
    }
    image = tmp_path / "elves.tar"
    image.write_bytes(_tar([(f"bin/{k}", "file", v) for k, v in cases.items()]))
    run, report = hostile_scan(tmp_path, image)
    assert run.returncode == 0
    paths = {f["path"] for f in report["files"]}
    assert {f"/bin/{k}" for k in cases} <= paths
    assert not any(r.endswith(".stage-failed") for r in rule_ids(report))


# ---------------------------------------------------------------- nothing unanalysed passes


def _refused_squashfs(tmp_path: Path) -> Path:
    """A real squashfs 4.0 whose compressor id no extractor knows (as vendor flavours do)."""
    root = tmp_path / "vendor-root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root::0:0:root:/root:/bin/sh\n")
    for i in range(30):
        (root / "etc" / f"conf{i}").write_bytes(os.urandom(2000))
    image = tmp_path / "vendor.sqfs"
    _mksquashfs(root, image, "-comp", "gzip")
    shutil.rmtree(root)
    data = bytearray(image.read_bytes())
    struct.pack_into("<H", data, 20, 9)  # compression id 9: no such compressor
    used = struct.unpack_from("<Q", data, 40)[0]
    for i in range(96, used):  # and blocks no known codec decodes (a vendor cipher or codec)
        data[i] ^= 0xA5
    image.write_bytes(bytes(data))
    return image


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_squashfs_flavour_is_exit_3_naming_the_cause(tmp_path, backend):
    image = _refused_squashfs(tmp_path)
    run, report = hostile_scan(
        tmp_path, image, "--extractor", backend, "--fail-on", "high", "--fail-on-vuln", "high"
    )
    assert run.returncode == 3
    errors = [line for line in run.stderr.splitlines() if line.startswith("cra-fw:")]
    assert len(errors) == 1 and "squashfs at 0x0" in errors[0] and "unsupported" in errors[0], run.stderr
    assert "no known format" not in run.stderr
    gap = next(f for f in report["findings"] if f["rule_id"] == "unpack.not-analysed")
    assert gap["severity"] == "high"
    assert assessment(report, "unpack")["status"] == "not_assessed"
    assert assessment(report, "vulnerabilities")["status"] == "not_assessed"


def test_real_squashfs_v2_is_analysed_or_exit_3_naming_the_flavour(tmp_path):
    """It used to say "Files: none" and pass every gate.  Now cra-fw's own reader extracts it;
    should that ever regress, the scan must stop with exit 3 naming the flavour, never pass."""
    image = SHARED_FIRMWARE / "binwalk" / "squashfs_v2.bin"
    if not image.exists():
        pytest.skip("../shared/firmware is not here (CI): the generated flavour test covers the class")
    run, report = hostile_scan(tmp_path, image, "--fail-on", "high", "--fail-on-vuln", "high")
    if report["files"]:
        assert assessment(report, "unpack")["status"] in ("complete", "partial")
        assert run.returncode == 1  # its root shells and no-NX binaries, and no vulnerability feed
    else:
        assert run.returncode == 3
        assert "squashfs 2.0" in run.stderr and "no known format" not in run.stderr


@pytest.mark.parametrize(("filler", "severity", "status"), [(60_000, "medium", 0), (2_000_000, "low", 0)])
def test_unanalysed_share_sets_the_severity(tmp_path, filler, severity, status):
    """A flash image: a tar the scan reads, then a squashfs nobody can extract."""
    need("mksquashfs")
    squash = _refused_squashfs(tmp_path).read_bytes()
    good = _tar([("etc/motd", "file", os.urandom(filler))])
    image = tmp_path / "flash.bin"
    image.write_bytes(good + b"\xff" * (-len(good) % 4096) + squash)
    run, report = hostile_scan(tmp_path, image, "--fail-on", "high")
    gap = next(f for f in report["findings"] if f["rule_id"] == "unpack.not-analysed")
    assert gap["severity"] == severity, gap
    assert run.returncode == status
    assert assessment(report, "unpack")["status"] == "partial"
    share = assessment(report, "unpack")["share"]
    assert abs(share - len(squash) / image.stat().st_size) < 0.01
    low = scan_cli(image, tmp_path / "out-low", "--fail-on", "low")
    assert low.returncode == 1


def test_scan_timeout_stops_with_a_finding(tmp_path):
    image = tmp_path / "small.tar"
    image.write_bytes(_tar([("etc/motd", "file", b"hello\n")]))
    run, report = hostile_scan(tmp_path, image, "--timeout", "0.001")
    assert run.returncode == 3
    assert "unpack.limit.scan-time" in rule_ids(report)
    assert "time limit" in run.stderr
