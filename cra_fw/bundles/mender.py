"""Mender artifacts (format v3, tar): manifest checksums of every file and ``manifest.sig``.

``manifest`` lists ``<sha256>  <name>`` for ``version``, the header tarball
and every payload file inside each ``data/NNNN.tar*``; ``manifest.sig`` is
base64 of a signature over the manifest bytes: RSA PKCS#1 v1.5 (or PSS) over
SHA-256, ECDSA as raw r||s (DER also accepted), or Ed25519.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import datetime as dt
import gzip
import hashlib
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cra_fw.bundles.crypto import check_key_strength, verify_ed25519, verify_prehashed
from cra_fw.bundles.interface import (
    DigestMismatch,
    InvalidSignature,
    MalformedBundle,
    Notebook,
    PartiallySigned,
    Unsigned,
    UntrustedSigner,
    Verifier,
)
from cra_fw.bundles.trust import TrustedKey, TrustStore

_MAX_SMALL = 4 * 1024 * 1024
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})  (\S.*)$")
# The one checksum layout GNU tar, Go archive/tar (mender-artifact), libarchive and
# Python write: six octal digits, NUL, space.  Readers also take leading blanks and
# either terminator, which would leave those bytes outside every check.
_CHKSUM_FIELD = re.compile(rb"[0-7]{6}\0 ")
# Unsigned by design (Mender "augmented" artifacts): listed as uncovered.
_AUGMENT = ("manifest-augment", "header-augment.tar")


class MenderVerifier(Verifier):
    name = "mender"
    description = "Mender artifact (v3 tar), manifest + manifest.sig"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        return len(head) >= 512 and head[257:262] == b"ustar" and head[:8] == b"version\0"

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        try:
            with open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r:") as outer:
                self._verify(outer, trust, ev)
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, gzip.BadGzipFile) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise MalformedBundle(f"Mender artifact is not a readable tar: {exc}") from exc

    def _verify(self, outer: tarfile.TarFile, trust: TrustStore, ev: Notebook) -> None:
        members = outer.getmembers()
        _check_tail(outer, members, ev.notes)
        _check_header_blocks(outer, members)
        names = [m.name for m in members]
        if not names or names[0] != "version":
            raise MalformedBundle("Mender artifact must start with 'version'")
        by_name = {m.name: m for m in members}
        version = _read_small(outer, by_name["version"])
        fmt = re.search(rb'"version"\s*:\s*(\d+)', version)
        if fmt is None or fmt.group(1) != b"3":
            raise MalformedBundle("only Mender artifact format version 3 is supported")
        if "manifest" not in by_name:
            raise MalformedBundle("Mender artifact has no manifest")
        manifest_bytes = _read_small(outer, by_name["manifest"])
        expected = _parse_manifest(manifest_bytes)
        if "manifest.sig" not in by_name:
            ev.notes.append("manifest present but no manifest.sig")
            raise Unsigned("Mender artifact has no manifest.sig")
        sig_text = _read_small(outer, by_name["manifest.sig"]).strip()
        try:
            sig = base64.b64decode(sig_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedBundle("manifest.sig is not base64") from exc
        deferred: UntrustedSigner | None = None
        try:
            self._check_signature(manifest_bytes, sig, trust, ev)
            ev.cover("manifest")
        except UntrustedSigner as exc:  # no key: the digests can still be checked
            deferred = exc
        self._check_digests(outer, members, expected, ev)
        if deferred is not None:
            raise deferred

    def _check_signature(self, manifest: bytes, sig: bytes, trust: TrustStore, ev: Notebook) -> None:
        keys = trust.all_keys()
        if not keys:
            raise UntrustedSigner("no trusted key given; the manifest signature cannot be checked")
        digests = {a: hashlib.new(a, manifest).digest() for a in ("sha256", "sha384")}
        for tk in keys:
            label = _try_key(tk, sig, manifest, digests)
            if label:
                ev.signer = tk.name or tk.source
                ev.key_fingerprint = tk.fingerprint
                ev.algorithm(label)
                check_key_strength(tk.key, ev)
                return
        raise InvalidSignature(
            "manifest.sig does not verify under any trusted key "
            "(tampered manifest, or signed by an untrusted key)"
        )

    def _check_digests(
        self, outer: tarfile.TarFile, members: list[tarfile.TarInfo], expected: dict[str, str], ev: Notebook
    ) -> None:
        seen: set[str] = set()
        for m in members:
            if m.name in ("manifest", "manifest.sig"):
                continue
            if not m.isfile():
                raise MalformedBundle(f"unexpected non-file member {m.name!r} in Mender artifact")
            if m.name.startswith(_AUGMENT):
                ev.uncover(m.name)
                continue
            if m.name.startswith("data/") and re.fullmatch(r"data/\d{4}\.tar(\.\w+)?", m.name):
                self._check_payload(outer, m, expected, ev, seen)
                continue
            want = expected.get(m.name)
            got = _sha256_member(outer, m)
            if want is None:
                ev.uncover(m.name)
                continue
            if got != want:
                raise DigestMismatch(f"{m.name}: sha256 {got[:16]}... differs from the manifest")
            ev.cover(m.name)
            seen.add(m.name)
        missing = sorted(set(expected) - seen)
        if missing:
            raise MalformedBundle(f"manifest lists files the artifact lacks: {', '.join(missing[:5])}")
        if ev.uncovered:
            raise PartiallySigned(f"not covered by the signed manifest: {', '.join(ev.uncovered[:5])}")

    def _check_payload(
        self,
        outer: tarfile.TarFile,
        m: tarfile.TarInfo,
        expected: dict[str, str],
        ev: Notebook,
        seen: set[str],
    ) -> None:
        index = m.name[5:9]
        raw = outer.extractfile(m)
        if raw is None:
            raise MalformedBundle(f"{m.name} cannot be read")
        stream = _decompressor(m.name, raw)
        try:
            for name_in, data in iter_tar_stream(stream):
                name = f"data/{index}/{name_in}"
                h = hashlib.sha256()
                for chunk in data:
                    h.update(chunk)
                want = expected.get(name)
                if want is None:
                    ev.uncover(name)
                    continue
                if h.hexdigest() != want:
                    raise DigestMismatch(f"{name}: payload sha256 differs from the manifest")
                ev.cover(name)
                seen.add(name)
        finally:
            stream.close()


def iter_tar_stream(stream: IO[bytes]) -> Iterator[tuple[str, Iterator[bytes]]]:
    """Regular files of a streamed tar, strictly: bad checksums, non-files and
    anything but zero blocks after the end marker are malformed."""
    long_name = ""
    for _ in range(100_000):
        hdr = _read_exact(stream, 512)
        if not hdr.strip(b"\0"):
            if _read_exact(stream, 512).strip(b"\0"):  # the end marker is two zero blocks
                raise MalformedBundle("payload tar has data after its end marker")
            while chunk := stream.read(1024 * 1024):
                if chunk.strip(b"\0"):
                    raise MalformedBundle("payload tar has data after its end marker")
            return
        if not _CHKSUM_FIELD.fullmatch(hdr[148:156]):
            raise MalformedBundle("payload tar header checksum field is not in the canonical form")
        want = int(hdr[148:154], 8)
        if sum(hdr[:148]) + 8 * 32 + sum(hdr[156:]) != want:
            raise MalformedBundle("payload tar header checksum mismatch")
        size = _tar_size(hdr[124:136])
        kind = hdr[156:157]
        name = hdr[:100].split(b"\0", 1)[0]
        if hdr[257:262] == b"ustar" and hdr[345:500].strip(b"\0"):
            name = hdr[345:500].split(b"\0", 1)[0] + b"/" + name
        if kind in (b"L", b"x", b"g"):
            if size > _MAX_SMALL:
                raise MalformedBundle("payload tar extended header too large")
            meta = _read_exact(stream, (size + 511) // 512 * 512)[:size]
            if kind == b"L":
                long_name = meta.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif kind == b"x":
                found = re.search(rb"\d+ path=([^\n]*)\n", meta)
                if found:
                    long_name = found.group(1).decode("utf-8", "replace")
            continue
        if kind not in (b"0", b"\0"):
            raise MalformedBundle(f"payload tar holds a non-file entry (type {kind!r})")
        fname = long_name or name.decode("utf-8", "replace")
        long_name = ""

        def body(left: int = size) -> Iterator[bytes]:
            while left > 0:
                chunk = _read_exact(stream, min(left, 1024 * 1024))
                left -= len(chunk)
                yield chunk

        data = body()
        yield fname, data
        for _ in data:  # the caller may stop early: skip what is left
            pass
        pad = (-size) % 512
        if pad:
            _read_exact(stream, pad)
    raise MalformedBundle("payload tar has too many members")


def _tar_size(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.strip(b" \0") or b"0", 8)
    except ValueError:
        raise MalformedBundle("payload tar size field unreadable") from None


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            raise MalformedBundle("payload tar truncated")
        buf += chunk
    return bytes(buf)


def _check_tail(outer: tarfile.TarFile, members: list[tarfile.TarInfo], notes: list[str]) -> None:
    """Only zero blocks may follow the last member: tarfile stops silently at a corrupt
    header, which would otherwise hide members (and bytes) from the checks."""
    if not members:
        raise MalformedBundle("Mender artifact tar is empty")
    last = members[-1]
    end = last.offset_data + (last.size + 511) // 512 * 512
    fh = outer.fileobj
    assert fh is not None
    size = fh.seek(0, 2)
    fh.seek(end)
    left = size - end
    if left % 512:
        # a partial block: the file was cut (mender-artifact: "unexpected EOF")
        raise MalformedBundle(
            f"Mender artifact is truncated: {left % 512} bytes of a 512-byte block after its last member"
        )
    if left < 1024:
        notes.append(f"the tar's end-of-archive blocks are incomplete ({left} of 1024 bytes)")
    while left > 0:
        chunk = fh.read(min(left, 1024 * 1024))
        if not chunk:
            break
        if chunk.strip(b"\0"):
            raise MalformedBundle("Mender artifact has data after its last tar member (corrupt header?)")
        left -= len(chunk)


def _check_header_blocks(outer: tarfile.TarFile, members: list[tarfile.TarInfo]) -> None:
    """Every header block of the outer tar (extended headers included) must carry its
    checksum in the canonical form; tarfile itself accepts looser layouts."""
    fh = outer.fileobj
    assert fh is not None
    for m in members:
        for off in range(m.offset, m.offset_data, 512):
            fh.seek(off)
            if not _CHKSUM_FIELD.fullmatch(fh.read(512)[148:156]):
                raise MalformedBundle(
                    f"tar header of {m.name!r} has a checksum field in a non-canonical form"
                )


def _try_key(tk: TrustedKey, sig: bytes, manifest: bytes, digests: dict[str, bytes]) -> str:
    key = tk.key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519" if verify_ed25519(key, sig, manifest) else ""
    if isinstance(key, rsa.RSAPublicKey):
        if verify_prehashed(key, sig, digests["sha256"], "sha256", "pkcs1"):
            return f"rsa{key.key_size}-pkcs1v15-sha256"
        if verify_prehashed(key, sig, digests["sha256"], "sha256", "pss"):
            return f"rsa{key.key_size}-pss-sha256"
        return ""
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        scheme = "raw" if len(sig) == 2 * size else "der"
        for h in ("sha256", "sha384"):
            if verify_prehashed(key, sig, digests[h], h, scheme):
                return f"ecdsa-{key.curve.name}-{h}" + ("-der" if scheme == "der" else "")
    return ""


def _parse_manifest(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBundle("Mender manifest is not UTF-8 text") from exc
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _MANIFEST_LINE.match(line)
        if m is None:
            raise MalformedBundle(f"Mender manifest line is malformed: {line[:80]!r}")
        out[m.group(2)] = m.group(1)
    if not out:
        raise MalformedBundle("Mender manifest is empty")
    return out


def _read_small(tar: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    if m.size > _MAX_SMALL:
        raise MalformedBundle(f"{m.name} is implausibly large ({m.size} bytes)")
    f = tar.extractfile(m)
    if f is None:
        raise MalformedBundle(f"{m.name} cannot be read")
    data = f.read()
    if len(data) != m.size:
        raise MalformedBundle(f"{m.name} truncated")
    return data


def _sha256_member(tar: tarfile.TarFile, m: tarfile.TarInfo) -> str:
    f = tar.extractfile(m)
    if f is None:
        raise MalformedBundle(f"{m.name} cannot be read")
    h = hashlib.sha256()
    left = m.size
    while left > 0:
        chunk = f.read(min(left, 1024 * 1024))
        if not chunk:
            raise MalformedBundle(f"{m.name} truncated")
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def _decompressor(name: str, raw: IO[bytes]) -> IO[bytes]:
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if name.endswith(".xz"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if name.endswith(".tar"):
        return raw
    if name.endswith(".zst"):
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError as exc:
            raise MalformedBundle("zstd-compressed Mender payload: install the 'zstandard' module") from exc
        return zstandard.ZstdDecompressor().stream_reader(raw)
    raise MalformedBundle(f"unsupported Mender payload compression: {name}")
