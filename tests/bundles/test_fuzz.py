"""Random byte flips and truncations of every valid fixture: never `valid`, never a traceback.

A few bytes of each format are unsigned *by design* and change nothing that
gets installed: FIT signature-node metadata (timestamp, signer-name, comment,
key-name-hint) and header/padding bytes, tar and cpio header fields such as
mtime.  A mutant may stay `valid` only when a real tool (dtc, tar, cpio)
shows that its installable content is byte-identical to the original.
"""

from __future__ import annotations

import filecmp
import random
import re
import shutil
import time
from pathlib import Path

import pytest

from cra_fw.bundles import TrustStore, Verdict, verify_bundle

from .helpers import OUT, cases, run

VALID = [c for c in cases() if c["verdict"] == "valid"]
PER_FIXTURE = 12  # ~40 valid fixtures -> several hundred mutants
_SIG_KEEP = re.compile(r"^\s*(algo|value|padding|hashed-strings|required)\s*=")


def _fit_dts(path: Path) -> str | None:
    proc = run("dtc", "-q", "-I", "dtb", "-O", "dts", path)
    if proc.returncode != 0:
        return None
    out, depth_in_sig = [], 0
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if depth_in_sig:
            depth_in_sig += line.count("{") - line.count("}")
            if depth_in_sig and not _SIG_KEEP.match(line):
                continue
        elif re.match(r"^\s*signature(-[\w@]+)?\s*\{", line):
            depth_in_sig = 1
        out.append(line)
    return "\n".join(out)


def _extracted_same(orig: Path, mutant: Path, tmp: Path, tool: list[str]) -> bool:
    a, b = tmp / "a", tmp / "b"
    for d in (a, b):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    if run(*tool, orig, cwd=a).returncode != 0 or run(*tool, mutant, cwd=b).returncode != 0:
        return False
    for d in (a, b):  # Mender payload tarballs: compare what they hold, not their headers
        for inner in d.glob("data/*.tar*"):
            target = inner.with_name(inner.name + ".d")
            target.mkdir()
            if run("tar", "-xf", inner, "-C", target).returncode != 0:
                return False
            inner.unlink()
    cmp = filecmp.dircmp(a, b)

    def same(c: filecmp.dircmp) -> bool:
        if c.left_only or c.right_only or c.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        return not mismatch and not errors and all(same(s) for s in c.subdirs.values())

    return same(cmp)


def harmless(fmt: str, orig: Path, mutant: Path, tmp: Path) -> bool:
    """True when a real tool sees the same installable content in both files."""
    if fmt == "fit":
        a, b = _fit_dts(orig), _fit_dts(mutant)
        return a is not None and a == b
    if fmt == "mender":
        return _extracted_same(orig, mutant, tmp, ["tar", "-xf"])
    if fmt == "swupdate":
        return _extracted_same(orig, mutant, tmp, ["cpio", "-i", "--quiet", "-F"])
    return False  # RAUC and detached: every byte is signed


@pytest.mark.slow
def test_mutants_are_never_valid(tmp_path: Path) -> None:
    if not VALID:
        pytest.skip("bundle fixtures not built")
    for tool in ("dtc", "tar", "cpio"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    rng = random.Random(20261127)
    start = time.monotonic()
    total = still_valid = 0
    for n, case in enumerate(VALID):
        src = OUT / case["path"]
        trust = TrustStore.load([OUT / t for t in case["trust"]])
        sig = OUT / case["signature"] if case["signature"] else None
        data = src.read_bytes()
        for i in range(PER_FIXTURE):
            mutant = bytearray(data)
            kind = rng.choice(("flip", "flip", "flips", "truncate"))
            if kind == "flip":
                mutant[rng.randrange(len(mutant))] ^= 1 << rng.randrange(8)
            elif kind == "flips":
                for _ in range(rng.randint(2, 16)):
                    mutant[rng.randrange(len(mutant))] = rng.randrange(256)
            else:
                del mutant[rng.randrange(len(mutant)) :]
            if bytes(mutant) == data:
                continue
            path = tmp_path / f"m{n}-{i}{src.suffix}"
            path.write_bytes(bytes(mutant))
            # a detached sidecar follows the mutant so the same signature applies
            for suffix in (".minisig", ".sig", ".p7s"):
                side = src.with_name(src.name + suffix)
                if sig is None and side.exists():
                    path.with_name(path.name + suffix).write_bytes(side.read_bytes())
            result = verify_bundle(path, trust, signature=sig)  # raises on any unexpected exception
            total += 1
            if result.verdict is Verdict.VALID:
                still_valid += 1
                assert harmless(case["format"], src, path, tmp_path), (case["path"], kind, i)
            path.unlink()
    assert total >= 300
    assert still_valid <= total // 10
    assert time.monotonic() - start < 90
