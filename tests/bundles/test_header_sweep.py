"""Fail closed on archive headers: single-bit flips of the cpio/tar/CMS framing.

Every bit of every cpio header (and name, padding, trailer) of a valid
``.swu`` is flipped.  A mutant may stay ``valid`` only when the flipped byte
lies in a field on the documented ignore list
(:data:`cra_fw.bundles.swupdate.IGNORED_FIELDS`) *and* GNU cpio extracts the
very same files, byte for byte, from it.  Mender (tar headers, outer and
payload) and RAUC (CMS and size trailer) get the same treatment on a sample
of positions: there nothing is on an ignore list, so no mutant may be valid.
"""

from __future__ import annotations

import random
import tarfile
from pathlib import Path

import pytest
from asn1crypto import cms as acms

from cra_fw.bundles import TrustStore, Verdict, verify_bundle
from cra_fw.bundles.swupdate import IGNORED_FIELDS

from .helpers import OUT, need, run

SWU = OUT / "swupdate/valid-rsa-crc.swu"  # crc format: the check field is live
SWU_TRUST = [OUT / "keys/signer-rsa.pub.pem"]
MENDER = OUT / "mender/valid-rsa.mender"  # uncompressed payload: inner tar headers are reachable
MENDER_TRUST = [OUT / "keys/signer-rsa.pub.pem"]
RAUC = OUT / "rauc/plain-rsa.raucb"
RAUC_TRUST = [OUT / "keys/ca.crt"]

_FIELDS = (
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
)


def _cpio_layout(data: bytes) -> list[list[tuple[int, str]]]:
    """Per archive entry: (offset, field label) of every framing byte of the known-good original."""
    entries: list[list[tuple[int, str]]] = []
    pos = 0
    while True:
        labels: list[tuple[int, str]] = [(pos + i, "magic") for i in range(6)]
        for n, field in enumerate(_FIELDS):
            for i in range(8):
                label = field
                if field == "mode":  # the low three hex digits are permission bits
                    label = "mode permission bits" if i >= 5 else "mode type bits"
                labels.append((pos + 6 + 8 * n + i, label))
        size = int(data[pos + 54 : pos + 62], 16)
        namesize = int(data[pos + 94 : pos + 102], 16)
        name = data[pos + 110 : pos + 110 + namesize - 1]
        labels += [(pos + 110 + i, "name") for i in range(namesize)]
        data_off = (pos + 110 + namesize + 3) & ~3
        labels += [(i, "name padding") for i in range(pos + 110 + namesize, data_off)]
        end = (data_off + size + 3) & ~3
        labels += [(i, "data padding") for i in range(data_off + size, end)]
        if name == b"TRAILER!!!":
            rng = random.Random(5)  # a sample of the 512-byte block padding after the trailer
            tail = list(range(end, len(data)))
            labels += [(i, "after trailer") for i in rng.sample(tail, min(32, len(tail)))]
            entries.append(labels)
            return entries
        entries.append(labels)
        pos = end


def _cpio_files(path: Path) -> dict[str, bytes] | None:
    """name -> content as GNU cpio extracts it (None when cpio fails)."""
    listing = run("cpio", "-itv", "--quiet", "-F", path)
    content = run("cpio", "-i", "--quiet", "--to-stdout", "-F", path)
    if listing.returncode != 0 or content.returncode != 0:
        return None
    out: dict[str, bytes] = {}
    pos = 0
    for line in listing.stdout.decode("utf-8", "replace").splitlines():
        cols = line.split(maxsplit=8)
        size, name = int(cols[4]), cols[8]
        if name in out:
            return None
        out[name] = content.stdout[pos : pos + size]
        pos += size
    return out if pos == len(content.stdout) else None


def _flip(data: bytes, offset: int, bit: int, path: Path) -> Path:
    mutant = bytearray(data)
    mutant[offset] ^= 1 << bit
    path.write_bytes(bytes(mutant))
    return path


def _valid_original(path: Path, trust_paths: list[Path]) -> tuple[bytes, TrustStore]:
    """The fixture's bytes and trust store, after checking the unmodified fixture is ``valid``."""
    if not path.exists():
        pytest.skip("bundle fixtures not built")
    trust = TrustStore.load(trust_paths)
    assert verify_bundle(path, trust).verdict is Verdict.VALID
    return path.read_bytes(), trust


def _valid_flips(data: bytes, positions: list[int], trust: TrustStore, path: Path) -> list[tuple[int, int]]:
    """(offset, bit) of every single-bit flip at ``positions`` that still verifies ``valid``."""
    return [
        (offset, bit)
        for offset in positions
        for bit in range(8)
        if verify_bundle(_flip(data, offset, bit, path), trust).verdict is Verdict.VALID
    ]


def _entries() -> list[list[tuple[int, str]]]:
    return _cpio_layout(SWU.read_bytes()) if SWU.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("index", range(5))
def test_cpio_header_bit_flips(index: int, tmp_path: Path) -> None:
    if not SWU.exists():
        pytest.skip("bundle fixtures not built")
    need("cpio")
    entries = _entries()
    assert len(entries) == 5  # sw-description, .sig, rootfs.ext4, app.bin, TRAILER!!!
    data = SWU.read_bytes()
    trust = TrustStore.load(SWU_TRUST)
    assert verify_bundle(SWU, trust).verdict is Verdict.VALID
    original = _cpio_files(SWU)
    assert original is not None and set(original) == {
        "sw-description",
        "sw-description.sig",
        "rootfs.ext4",
        "app.bin",
    }
    tolerated: dict[str, int] = {}
    total = 0
    for offset, label in entries[index]:
        for bit in range(8):
            mutant = _flip(data, offset, bit, tmp_path / "m.swu")
            verdict = verify_bundle(mutant, trust)
            total += 1
            if verdict.verdict is not Verdict.VALID:
                continue
            assert label in IGNORED_FIELDS, (offset, bit, label)
            assert _cpio_files(mutant) == original, (offset, bit, label)
            assert any("not covered" in n and label in n for n in verdict.notes)
            tolerated[label] = tolerated.get(label, 0) + 1
    assert total >= 8 * 110
    # what must never be tolerated: every field SWUpdate parses, names and padding
    assert not set(tolerated) & {
        "magic",
        "filesize",
        "namesize",
        "check",
        "name",
        "name padding",
        "data padding",
        "mode type bits",
        "after trailer",
    }


def _tar_header_offsets(path: Path) -> list[int]:
    """Offsets of the outer tar headers and of the headers inside uncompressed payload tars."""
    offsets: list[int] = []
    with tarfile.open(path) as outer:
        for m in outer.getmembers():
            offsets += range(m.offset, m.offset_data, 512)
            if m.name.startswith("data/") and m.name.endswith(".tar"):
                inner_file = outer.extractfile(m)
                assert inner_file is not None
                with tarfile.open(fileobj=inner_file) as inner:
                    for im in inner.getmembers():
                        offsets += (m.offset_data + o for o in range(im.offset, im.offset_data, 512))
    return offsets


@pytest.mark.slow
def test_mender_tar_header_bit_flips(tmp_path: Path) -> None:
    data, trust = _valid_original(MENDER, MENDER_TRUST)
    headers = _tar_header_offsets(MENDER)
    assert len(headers) >= 6  # version, manifest, manifest.sig, header.tar, data/0000.tar, its file
    # every bit of every checksum field (where readers are lenient), plus a sample of the rest
    positions = [h + i for h in headers for i in range(148, 156)]
    rng = random.Random(7)
    positions += rng.sample([h + i for h in headers for i in range(512) if not 148 <= i < 156], 120)
    assert _valid_flips(data, positions, trust, tmp_path / "m.mender") == []


@pytest.mark.slow
def test_rauc_cms_and_trailer_bit_flips(tmp_path: Path) -> None:
    data, trust = _valid_original(RAUC, RAUC_TRUST)
    cms_size = int.from_bytes(data[-8:], "big")
    cms_start = len(data) - 8 - cms_size
    der = data[cms_start : len(data) - 8]
    signer_info = acms.ContentInfo.load(der)["content"]["signer_infos"][0]
    si_start = cms_start + der.find(signer_info.dump())
    sig_start = cms_start + der.find(signer_info["signature"].contents)
    assert cms_start < si_start < sig_start
    rng = random.Random(11)
    # in full: the SignedData framing (version, digestAlgorithms, content type), the SignerInfo up
    # to its signature value (version, sid, algorithms, signed attributes), the size trailer;
    # then a sample of the rest (certificates, signature value, squashfs superblock)
    positions = [
        *range(cms_start, cms_start + 60),
        *range(si_start, sig_start),
        *range(len(data) - 8, len(data)),
    ]
    positions += rng.sample(range(cms_start + 60, si_start), 40) + rng.sample(
        range(sig_start, len(data) - 8), 8
    )
    positions += rng.sample(range(0, 96), 16)
    # offsets reported relative to the CMS start, as asn1 dumps show them
    assert [(o - cms_start, b) for o, b in _valid_flips(data, positions, trust, tmp_path / "m.raucb")] == []
