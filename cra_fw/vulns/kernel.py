"""Kernel CVEs against the kernel that was built.

The kernel CNA's CVE records (CVE JSON 5) name the source files a fix touched
(``affected[].programFiles``).  When the image tells how its kernel was configured (a
``/boot/config-*`` file, a ``.config``, IKCONFIG in an uncompressed kernel or ``configs.ko``),
each file is mapped to the Kconfig symbols that gate it (``signatures/kernel/kbuild-map.tsv.gz``,
generated from the kernel's own Makefiles by ``scripts/kbuild_map.py``).  A CVE all of whose C
files sit behind a symbol the configuration leaves off is ``not_affected`` (``code_not_present``),
with the symbol and the configuration file as the evidence.  Anything cra-fw cannot map (headers,
files the map does not know, gates that are not plain ``CONFIG_*`` symbols) keeps the CVE.

``modules.order`` and ``modules.builtin`` are read and reported (which objects were built, as
modules or into the kernel); they only ever confirm that code is built.
"""

from __future__ import annotations

import functools
import gzip
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlite_utils

from cra_fw.db import transaction
from cra_fw.paths import signatures_dir
from cra_fw.records import FileEntry

MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_KERNEL_READ = 64 * 1024 * 1024
KERNEL_NAMES = ("linux", "linux-kernel", "linux_kernel", "kernel")
_CONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$|^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class KernelBuild:
    """What the image says about how its kernel was built."""

    config: dict[str, str]  # CONFIG_X -> "y" | "m" | "n" (and values); empty when unknown
    config_source: str
    built_objects: frozenset[str]  # "drivers/net/wireless/ath/ath9k/ath9k" from modules.order/.builtin
    objects_source: str


@dataclass(frozen=True)
class NotBuilt:
    """Why a CVE's code is not in this kernel."""

    evidence: str


def parse_config(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _CONFIG_LINE.match(line.strip())
        if m is None:
            continue
        if m.group(3):
            out[m.group(3)] = "n"
        else:
            out[m.group(1)] = m.group(2).strip().strip('"')
    return out


def _ikconfig(data: bytes) -> str:
    """The configuration IKCONFIG embeds (``IKCFG_ST`` + gzip + ``IKCFG_ED``), or ""."""
    at = data.find(b"IKCFG_ST")
    if at < 0:
        return ""
    try:
        text = zlib.decompressobj(31).decompress(data[at + 8 : at + 8 + MAX_CONFIG_BYTES], MAX_CONFIG_BYTES)
    except zlib.error:
        return ""
    return text.decode("utf-8", "replace")


def _read(f: FileEntry, limit: int) -> bytes:
    if not f.abs_path:
        return b""
    try:
        with open(f.abs_path, "rb") as fh:
            return fh.read(limit)
    except OSError:
        return b""


def kernel_build(files: Iterable[FileEntry]) -> KernelBuild | None:
    """The configuration and object lists found among the image's files (None: nothing found)."""
    config: dict[str, str] = {}
    config_source = ""
    objects: set[str] = set()
    sources: list[str] = []
    for f in files:
        if f.kind.value in ("symlink", "directory", "device") or f.size <= 0:
            continue
        name = f.name
        if not config and (
            re.fullmatch(r"config-\d[^/]*", name) and "/boot/" in f.path or name in (".config", "config.gz")
        ):
            data = _read(f, MAX_CONFIG_BYTES)
            if data[:2] == b"\x1f\x8b":
                try:
                    data = gzip.decompress(data)[:MAX_CONFIG_BYTES]
                except (OSError, EOFError):
                    data = b""
            parsed = parse_config(data.decode("utf-8", "replace"))
            if len(parsed) > 50:  # a real configuration has hundreds of symbols
                config, config_source = parsed, f"{f.layer_id}:{f.path}"
        elif not config and (name.startswith(("configs.ko", "vmlinux")) or f.kind.value == "kernel"):
            text = _ikconfig(_read(f, MAX_KERNEL_READ))
            parsed = parse_config(text)
            if len(parsed) > 50:
                config, config_source = parsed, f"IKCONFIG in {f.layer_id}:{f.path}"
        elif name in ("modules.order", "modules.builtin") and "/lib/modules/" in f.path:
            for line in _read(f, MAX_CONFIG_BYTES).decode("utf-8", "replace").splitlines():
                obj = line.strip()
                obj = obj[len("kernel/") :] if obj.startswith("kernel/") else obj
                obj = re.sub(r"\.ko(\.(xz|gz|zst))?$", "", obj)
                if obj:
                    objects.add(obj)
            sources.append(f"{f.layer_id}:{f.path}")
    if not config and not objects:
        return None
    return KernelBuild(config, config_source, frozenset(objects), ", ".join(sorted(sources)))


@functools.lru_cache(maxsize=1)
def kbuild_map() -> tuple[dict[str, tuple[tuple[str, ...], str]], dict[str, tuple[str, ...]]]:
    """(source file -> (symbols, object), gated directory -> symbols) from the shipped map."""
    path = signatures_dir() / "kernel" / "kbuild-map.tsv.gz"
    files: dict[str, tuple[tuple[str, ...], str]] = {}
    dirs: dict[str, tuple[str, ...]] = {}
    for line in gzip.decompress(path.read_bytes()).decode().splitlines():
        if not line or line.startswith("#"):
            continue
        src, syms, obj = (line.split("\t") + ["", ""])[:3]
        symbols = tuple(s for s in syms.split(",") if s)
        if src.endswith("/"):
            dirs[src] = symbols
        else:
            files[src] = (symbols, obj)
    return files, dirs


def _gates(path: str) -> tuple[str, ...] | None:
    files, dirs = kbuild_map()
    if path in files:
        return files[path][0]
    parts = path.split("/")[:-1]
    for i in range(len(parts), 0, -1):  # the nearest gated directory
        d = "/".join(parts[:i]) + "/"
        if d in dirs:
            return dirs[d]
    return None


def not_built(build: KernelBuild, program_files: Iterable[str]) -> NotBuilt | None:
    """Evidence that none of the files is compiled into this kernel, or None (keep the CVE)."""
    if not build.config:
        return None
    reasons = []
    program_files = list(program_files)
    if not program_files:
        return None
    for path in program_files:
        if not path.endswith((".c", ".S")):
            return None  # a header is shared code: cannot tell
        gates = _gates(path)
        if gates is None or not gates or "?" in gates:
            return None
        off = [g for g in gates if build.config.get(g, "n") in ("n", "")]
        if not off:
            return None
        reasons.append(f"{path}: {off[0]} is not set")
    return NotBuilt("; ".join(reasons) + f" ({build.config_source})")


def store_program_files(db: sqlite_utils.Database, rows: Iterable[tuple[str, str]]) -> int:
    """Keep (CVE id, file) pairs in ``cve_files`` (a feeds table: ``db export`` carries it)."""
    rows = list(rows)
    with transaction(db):
        db.conn.executemany("INSERT OR IGNORE INTO cve_files (advisory_id, path) VALUES (?, ?)", rows)
    return len(rows)


def program_files(db: sqlite_utils.Database, advisory_ids: Iterable[str]) -> dict[str, list[str]]:
    """CVE id -> the files its fix touched (empty for a database made before ``cve_files`` existed)."""
    if "cve_files" not in db.table_names():
        return {}
    ids = sorted(set(advisory_ids))
    out: dict[str, list[str]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for adv, path in db.conn.execute(
            f"SELECT advisory_id, path FROM cve_files WHERE advisory_id IN ({marks})", chunk
        ):
            out.setdefault(adv, []).append(path)
    return out


def cve5_program_files(record: dict) -> list[tuple[str, str]]:
    """(CVE id, file) pairs a CVE JSON 5 record's CNA container names."""
    meta = record.get("cveMetadata") or {}
    cve = str(meta.get("cveId", ""))
    cna = (record.get("containers") or {}).get("cna") or {}
    out = []
    for affected in cna.get("affected") or []:
        if isinstance(affected, dict):
            for path in affected.get("programFiles") or []:
                out.append((cve, str(path)))
    return list(dict.fromkeys(out)) if cve else []
