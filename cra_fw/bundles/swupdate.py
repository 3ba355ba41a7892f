"""SWUpdate ``.swu``: a cpio archive (newc or crc) with ``sw-description`` first.

``sw-description.sig`` signs ``sw-description`` (RSA PKCS#1 v1.5 or PSS over
SHA-256, or CMS); every image, file and script it lists must carry a
``sha256`` that matches the archive member.  The archive is streamed once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mmap
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric import rsa

from cra_fw.bundles.cms import verify_cms
from cra_fw.bundles.crypto import check_key_strength, verify_prehashed
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
from cra_fw.bundles.trust import TrustStore
from cra_fw.parsers.cpio import cpio_entries

_MAX_DESC = 1024 * 1024
_MAX_ENTRIES = 100_000
_CMS_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"


# newc/crc header: magic, then 13 fields of 8 hex digits.  SWUpdate (get_cpiohdr)
# reads only filesize, namesize and check; the rest it never parses, so those
# fields are unsigned and may not change what gets installed.
HEADER_FIELDS = (
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
IGNORED_FIELDS = (
    "ino",
    "mode permission bits",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
)
NOT_COVERED_NOTE = (
    "cpio header fields "
    + ", ".join(IGNORED_FIELDS)
    + " are not covered by any signature (SWUpdate ignores them; they cannot change "
    "what gets installed)"
)
_HEX = frozenset(b"0123456789abcdefABCDEF")
_S_IFREG = 0o100000
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    name: str
    size: int
    data_offset: int
    checksum: int
    crc_format: bool


class _CpioState:
    """What must stay the same across all headers of one archive."""

    def __init__(self) -> None:
        self.magic: bytes | None = None
        self.upper = False
        self.lower = False
        self.names: set[str] = set()


def _parse_header(hdr: bytes, pos: int, state: _CpioState) -> dict[str, int]:
    magic = hdr[:6]
    if magic not in (b"070701", b"070702"):
        raise MalformedBundle(f"cpio header at {pos} has bad magic {magic!r}")
    if state.magic is None:
        state.magic = magic
    elif magic != state.magic:
        raise MalformedBundle(f"cpio header at {pos} mixes newc and crc formats")
    fields: dict[str, int] = {}
    for i, fname in enumerate(HEADER_FIELDS):
        raw = hdr[6 + 8 * i : 14 + 8 * i]
        # Exactly eight hex digits: SWUpdate's from_ascii stops silently at the first
        # non-hex byte and skips leading blanks, Python's int() takes '0x', '_', '+'.
        # Neither leniency is needed by any writer, so both are refused.
        if not all(c in _HEX for c in raw):
            raise MalformedBundle(f"cpio header at {pos}: field {fname} is not 8 hex digits")
        state.upper |= any(0x41 <= c <= 0x46 for c in raw)
        state.lower |= any(0x61 <= c <= 0x66 for c in raw)
        fields[fname] = int(raw, 16)
    if state.upper and state.lower:
        # writers use one letter case throughout; a lone odd-case digit is a flipped bit
        raise MalformedBundle(f"cpio header at {pos} mixes upper- and lower-case hex digits")
    return fields


def iter_cpio(fh: BinaryIO, file_size: int):
    """Yield newc/crc entries (up to the trailer) without reading their data.

    Strict where SWUpdate is strict or where a changed byte could change what
    gets installed: hex fields, exact NUL-terminated names, NUL padding, regular
    files only, newc ``check`` zero, unique names, nothing but NULs after the
    trailer.  The crc ``check`` sum is compared by the caller, which reads the data.
    """
    pos = 0
    state = _CpioState()
    for _ in range(_MAX_ENTRIES):
        fh.seek(pos)
        hdr = fh.read(110)
        if len(hdr) < 110:
            raise MalformedBundle("cpio archive truncated (no trailer)")
        fields = _parse_header(hdr, pos, state)
        filesize, namesize, check = fields["filesize"], fields["namesize"], fields["check"]
        if namesize < 2 or namesize > 4096:
            raise MalformedBundle(f"cpio name size {namesize} at {pos} is implausible")
        name_raw = fh.read(namesize)
        if len(name_raw) < namesize:
            raise MalformedBundle("cpio archive truncated in a file name")
        # SWUpdate takes the name up to the first NUL; require that to be the last
        # byte so that no two readers can see different names.
        if name_raw[-1] != 0 or 0 in name_raw[:-1]:
            raise MalformedBundle(f"cpio name at {pos} is not one NUL-terminated string")
        try:
            name = name_raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedBundle(f"cpio name at {pos} is not UTF-8") from None
        data_off = (pos + 110 + namesize + 3) & ~3
        _check_nul(fh, pos + 110 + namesize, data_off, "name padding")
        if state.magic == b"070701" and check != 0:
            raise MalformedBundle(f"cpio newc header of {name} has a non-zero check field")
        if name == _TRAILER:
            if filesize != 0 or check != 0 or fields["mode"] & ~0o7777:
                raise MalformedBundle("cpio trailer carries data")
            fh.seek(data_off)
            while chunk := fh.read(1024 * 1024):
                if chunk.strip(b"\0"):
                    raise MalformedBundle("data after the cpio trailer")
            return
        if fields["mode"] & ~0o7777 != _S_IFREG:
            raise MalformedBundle(f"cpio member {name} is not a regular file (mode {fields['mode']:o})")
        if name in state.names:
            raise MalformedBundle(f"cpio member {name} occurs twice")
        state.names.add(name)
        if data_off + filesize > file_size:
            raise MalformedBundle(f"cpio member {name} runs past the end of the file")
        end = (data_off + filesize + 3) & ~3
        _check_nul(fh, data_off + filesize, end, f"padding after {name}")
        yield CpioEntry(name, filesize, data_off, check, state.magic == b"070702")
        pos = end
    raise MalformedBundle("cpio archive has too many members")


def _check_nul(fh: BinaryIO, start: int, end: int, what: str) -> None:
    if end <= start:
        return
    fh.seek(start)
    pad = fh.read(end - start)
    if len(pad) != end - start:
        raise MalformedBundle(f"cpio archive truncated in the {what}")
    if pad.strip(b"\0"):
        raise MalformedBundle(f"cpio {what} is not NUL bytes")


class SwupdateVerifier(Verifier):
    name = "swupdate"
    description = "SWUpdate .swu (cpio, sw-description + sw-description.sig)"

    @classmethod
    def sniff(cls, head: bytes, tail: bytes, size: int, path: Path) -> bool:
        if head[:6] not in (b"070701", b"070702"):
            return False
        if b"sw-description\0" in head[110:140] or path.suffix == ".swu":
            return True
        # a cpio that holds a sw-description anywhere is a .swu (a malformed one when it is not
        # first): never a plain file "without a signature"
        try:
            with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for n, (name, _mode, _at, _size) in enumerate(cpio_entries(data)):
                    if name in ("sw-description", "sw-description.sig") or n >= 64:
                        return name.startswith("sw-description")
        except (OSError, ValueError):
            return False
        return False

    def verify(
        self, path: Path, trust: TrustStore, ev: Notebook, *, signature: Path | None, now: dt.datetime
    ) -> None:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            entries = iter_cpio(fh, size)
            first = next(entries, None)
            if first is None or first.name != "sw-description":
                raise MalformedBundle("sw-description must be the first member of a .swu")
            if first.size > _MAX_DESC:
                raise MalformedBundle("sw-description is implausibly large")
            desc = _read(fh, first)
            _check_crc(first, desc)
            second = next(entries, None)
            rest: list[CpioEntry] = []
            sig: bytes | None = None
            if second is not None and second.name == "sw-description.sig":
                if second.size > _MAX_DESC:
                    raise MalformedBundle("sw-description.sig is implausibly large")
                sig = _read(fh, second)
                _check_crc(second, sig)
            elif second is not None:
                rest.append(second)
            if sig is None:
                raise Unsigned("the .swu has no sw-description.sig")
            # Without a usable key the signature cannot be judged, but the payload
            # digests still can: report those first, the missing trust last.
            deferred: UntrustedSigner | None = None
            try:
                self._check_signature(desc, sig, trust, ev, now)
                ev.cover("sw-description")
            except UntrustedSigner as exc:
                deferred = exc
            wanted = listed_hashes(desc)
            seen: set[str] = set()
            for entry in [*rest, *entries]:
                if entry.name == "sw-description.sig":
                    # SWUpdate reads the signature only right after sw-description
                    raise MalformedBundle("sw-description.sig must directly follow sw-description")
                digest, crc = _hash_entry(fh, entry)
                if entry.crc_format and crc != entry.checksum:
                    raise MalformedBundle(f"cpio crc of {entry.name} is wrong (archive corrupted)")
                want = wanted.get(entry.name)
                if not want:
                    ev.uncover(entry.name)
                    continue
                if digest not in want or len(want) != 1:
                    raise DigestMismatch(f"{entry.name}: sha256 differs from sw-description")
                ev.cover(f"{entry.name} ({entry.size} bytes)")
                seen.add(entry.name)
        ev.notes.append(NOT_COVERED_NOTE)
        for name, hashes in wanted.items():
            if not hashes:
                ev.uncover(f"{name} (listed without sha256)")
        missing = sorted(n for n, h in wanted.items() if h and n not in seen)
        if missing:
            raise MalformedBundle(f"sw-description lists files the archive lacks: {', '.join(missing[:5])}")
        if ev.uncovered:
            raise PartiallySigned(
                "not covered by a sha256 in the signed sw-description: " + ", ".join(ev.uncovered[:5])
            )
        if deferred is not None:
            raise deferred

    def _check_signature(
        self, desc: bytes, sig: bytes, trust: TrustStore, ev: Notebook, now: dt.datetime
    ) -> None:
        if sig[:1] == b"\x30" and _CMS_OID in sig[:32]:
            verify_cms(
                sig,
                trust,
                ev,
                detached=lambda algs: {a: hashlib.new(a, desc).digest() for a in algs},
                now=now,
            )
            ev.algorithm("cms")
            return
        keys = [k for k in trust.all_keys() if isinstance(k.key, rsa.RSAPublicKey)]
        if not keys:
            raise UntrustedSigner("no trusted RSA key given; sw-description.sig cannot be checked")
        digest = hashlib.sha256(desc).digest()
        for tk in keys:
            if len(sig) != (tk.key.key_size + 7) // 8:
                continue
            for scheme in ("pkcs1", "pss"):
                if verify_prehashed(tk.key, sig, digest, "sha256", scheme):
                    label = "pkcs1v15" if scheme == "pkcs1" else "pss"
                    ev.algorithm(f"rsa{tk.key.key_size}-{label}-sha256")
                    ev.signer = tk.name or tk.source
                    ev.key_fingerprint = tk.fingerprint
                    check_key_strength(tk.key, ev)
                    return
        raise InvalidSignature("sw-description.sig does not verify under any trusted RSA key")


def _read(fh: BinaryIO, entry: CpioEntry) -> bytes:
    fh.seek(entry.data_offset)
    data = fh.read(entry.size)
    if len(data) != entry.size:
        raise MalformedBundle(f"{entry.name} truncated")
    return data


def _check_crc(entry: CpioEntry, data: bytes) -> None:
    if entry.crc_format and (sum(data) & 0xFFFFFFFF) != entry.checksum:
        raise MalformedBundle(f"cpio crc of {entry.name} is wrong (archive corrupted)")


def _hash_entry(fh: BinaryIO, entry: CpioEntry) -> tuple[str, int]:
    h = hashlib.sha256()
    crc = 0
    fh.seek(entry.data_offset)
    left = entry.size
    while left:
        chunk = fh.read(min(left, 1024 * 1024))
        if not chunk:
            raise MalformedBundle(f"{entry.name} truncated")
        h.update(chunk)
        if entry.crc_format:
            crc = (crc + sum(chunk)) & 0xFFFFFFFF
        left -= len(chunk)
    return h.hexdigest(), crc


# -- sw-description (libconfig or JSON) ---------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<punct>[=:;,{}()\[\]])
  | (?P<atom>[A-Za-z0-9_.+\-*@]+)
""",
    re.S | re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise MalformedBundle(f"sw-description: unexpected character {text[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        value = m.group(kind)
        if kind == "str":
            value = bytes(value[1:-1], "utf-8").decode("unicode_escape", "replace")
            if out and out[-1][0] == "str":  # adjacent strings concatenate
                out[-1] = ("str", out[-1][1] + value)
                continue
        out.append((kind, value))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t = tokens
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str]:
        return self.t[self.i] if self.i < len(self.t) else ("eof", "")

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        self.i += 1
        return tok

    def settings(self, end: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            kind, value = self.peek()
            if value == end or kind == "eof":
                if value != end and end != "":
                    raise MalformedBundle("sw-description: unbalanced braces")
                if end:
                    self.take()
                return out
            if value in (";", ","):
                self.take()
                continue
            if kind not in ("atom", "str"):
                raise MalformedBundle(f"sw-description: expected a setting name, got {value!r}")
            self.take()
            if self.take()[1] not in ("=", ":"):
                raise MalformedBundle(f"sw-description: expected '=' after {value}")
            out[value] = self.value()

    def value(self) -> Any:
        self.depth += 1
        if self.depth > 64:
            raise MalformedBundle("sw-description nested too deeply")
        try:
            kind, value = self.take()
            if value == "{":
                return self.settings("}")
            if value in ("(", "["):
                close = ")" if value == "(" else "]"
                items: list[Any] = []
                while True:
                    k, v = self.peek()
                    if v == close:
                        self.take()
                        return items
                    if k == "eof":
                        raise MalformedBundle("sw-description: unterminated list")
                    if v == ",":
                        self.take()
                        continue
                    items.append(self.value())
            if kind in ("atom", "str"):
                return value
            raise MalformedBundle(f"sw-description: unexpected {value!r}")
        finally:
            self.depth -= 1


def parse_sw_description(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBundle("sw-description is not UTF-8") from exc
    tokens = _tokens(text)
    if tokens and tokens[0][1] == "{":  # JSON form
        parser = _Parser(tokens[1:])
        return parser.settings("}")
    return _Parser(tokens).settings("")


def listed_hashes(data: bytes) -> dict[str, set[str]]:
    """filename -> sha256 values listed anywhere in sw-description (empty set: none given)."""
    tree = parse_sw_description(data)
    out: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("filename"), str):
                entry = out.setdefault(node["filename"], set())
                sha = node.get("sha256")
                if isinstance(sha, str) and sha:
                    entry.add(sha.lower())
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(tree)
    return out
