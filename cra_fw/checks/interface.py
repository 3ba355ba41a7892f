"""The check contract and the records the checks stage produces.

A check is one small class: a ``name``, a ``category`` and ``run(ctx)`` yielding
:class:`~cra_fw.records.Finding`; it runs once it is listed in
:data:`cra_fw.checks.CHECKS`::

    class TelnetInInittab(Check):
        name = "services.inittab"
        category = "services"

        def run(self, ctx): ...

Checks that also build an inventory (services, hardening) expose it through
:meth:`Check.collect`, called once after :meth:`Check.run`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from cra_fw.context import ScanContext
from cra_fw.records import FileEntry, FileKind, Finding, Location, Severity

# CRA references (see ../shared/cra-reference.md), one name per mapping row.
CRA_CREDENTIALS = ("Annex I Part I (2)(b)", "Annex I Part I (2)(d)")
CRA_SECRETS = ("Annex I Part I (2)(d)", "Annex I Part I (2)(e)")
CRA_SERVICES = ("Annex I Part I (2)(b)", "Annex I Part I (2)(j)")
CRA_PLAINTEXT = ("Annex I Part I (2)(b)", "Annex I Part I (2)(j)", "Annex I Part I (2)(e)")
CRA_HARDENING = ("Annex I Part I (2)(k)",)

CATEGORIES = ("credentials", "secrets", "services", "hardening")


@dataclass(frozen=True)
class Service:
    """One network or console service the image starts, found statically."""

    name: str  # telnetd, dropbear, sshd, uhttpd, console-shell, ...
    binary: str = ""  # path in the image when known
    port: int | None = None
    bind_address: str = ""  # "" = unknown, "0.0.0.0" = all
    protocol: str = ""  # tcp, udp, serial
    started_by: str = ""  # e.g. "inittab:/etc/inittab:5", "systemd:/lib/systemd/system/x.service"
    authentication: str = "unknown"  # none, password, key, password+key, community, unknown
    layer_chain: tuple[str, ...] = ()
    config: str = ""  # the config file that told us about it
    notes: str = ""


@dataclass(frozen=True)
class ElfHardening:
    """Hardening verdicts of one ELF file, computed from the inventory's ElfInfo."""

    path: str
    layer_chain: tuple[str, ...]
    arch: str
    bits: int
    endian: str
    elf_type: str
    static: bool
    nx: bool
    exec_stack: bool
    pie: str  # "yes", "no", "dso" (shared library), "rel" (object/kernel module)
    relro: str  # "full", "partial", "none"
    canary: str  # "yes", "no", "unknown" (static and stripped)
    fortify: str  # "yes", "no", "unknown", "n/a"
    fortified: tuple[str, ...] = ()
    rpath: str = ""
    runpath: str = ""
    stripped: bool = True


@dataclass(frozen=True)
class HardeningSummary:
    """Per image and architecture: how many ELF files have each mitigation."""

    arch: str
    bits: int
    endian: str
    total: int
    executables: int
    libraries: int
    static: int
    nx: int
    pie: int  # executables that are PIE (of ``executables``)
    relro_full: int
    relro_partial: int
    canary: int
    fortify: int
    rpath: int
    stripped: int
    exec_stack: int

    def share(self, count: int, of: int | None = None) -> float:
        base = self.total if of is None else of
        return round(count / base, 4) if base else 0.0


class Check:
    """Base class: one rule family; subclasses set ``name``/``category`` and implement ``run``."""

    name: ClassVar[str] = ""
    category: ClassVar[str] = ""

    def run(self, ctx: ScanContext) -> Iterable[Finding]:  # pragma: no cover - interface
        raise NotImplementedError

    def collect(self) -> tuple:
        """Inventory records gathered by the last ``run`` (services, hardening); default none."""
        return ()


# ---- helpers shared by the checks -------------------------------------------------


def fingerprint(secret: str | bytes) -> str:
    """``sha256:`` and the first 16 hex digits of the secret's SHA-256."""
    data = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


def location(
    ctx: ScanContext, entry: FileEntry, line: int | None = None, offset: int | None = None
) -> Location:
    return Location(layer_chain=ctx.layer_chain(entry.layer_id), path=entry.path, line=line, offset=offset)


def finding(
    ctx: ScanContext,
    entry: FileEntry,
    *,
    rule_id: str,
    category: str,
    severity: Severity,
    title: str,
    cra: tuple[str, ...],
    evidence: str,
    remediation: str,
    fp: str = "",
    line: int | None = None,
    offset: int | None = None,
    extra: dict[str, str] | None = None,
) -> Finding:
    """A Finding located in ``entry``."""
    return Finding(
        rule_id=rule_id,
        category=category,
        severity=severity,
        title=title,
        cra_reference=cra,
        location=location(ctx, entry, line, offset),
        evidence=evidence,
        remediation=remediation,
        fingerprint=fp,
        extra=dict(extra or {}),
    )


def regular_files(ctx: ScanContext, globs: Iterable[str]) -> list[FileEntry]:
    """Regular (non-link, non-device) files matching ``globs``."""
    skip = {FileKind.SYMLINK, FileKind.DIRECTORY, FileKind.DEVICE}
    return [e for e in ctx.iter_files(globs=list(globs)) if e.kind not in skip]


def text_lines(ctx: ScanContext, entry: FileEntry, limit: int = 4 * 1024 * 1024) -> list[str]:
    """The file as lines (UTF-8 with replacement); ``[]`` for binary content."""
    data = ctx.read_bytes(entry, limit)
    if b"\0" in data[:8192]:
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def logical_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined and comments kept."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for no, raw in enumerate(lines, 1):
        if not buf:
            start = no
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        out.append((start, buf + raw))
        buf = ""
    if buf:
        out.append((start, buf))
    return out
