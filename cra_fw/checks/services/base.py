"""What every service source shares: the records it reports, the ``Source`` base, and its helpers.

A source reports starts (a daemon command line and who runs it), configuration
facts (port, bind address, authentication) and findings into one
:class:`Gathered`; the ``services`` check merges them (see ``__init__``).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from cra_fw.checks.interface import (
    CRA_PLAINTEXT,
    CRA_SERVICES,
    finding,
    fingerprint,
    regular_files,
    text_lines,
)
from cra_fw.checks.services.data import Daemon, ServiceData
from cra_fw.context import ScanContext
from cra_fw.records import FileEntry, Finding, Severity

CAT = "services"
# bytes read of a config file and of a start script
CONFIG_LIMIT = 2 * 1024 * 1024
SCRIPT_LIMIT = 1024 * 1024


# ---- records between sources and the merger ---------------------------------------------------


@dataclass(frozen=True)
class Start:
    """A daemon started by something in the image."""

    daemon: Daemon
    binary: str
    args: tuple[str, ...]
    started_by: str
    entry: FileEntry
    line: int
    port: int | None = None
    bind: str = ""


@dataclass(frozen=True)
class ConfigFacts:
    """What a daemon's own configuration says."""

    service: str
    entry: FileEntry
    port: int | None = None
    bind: str = ""
    auth: str = ""
    protocol: str = ""
    enabled: bool = True
    notes: str = ""


@dataclass
class Gathered:
    starts: list[Start] = field(default_factory=list)
    configs: list[ConfigFacts] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # file text already read in this run: an init script is parsed by the per-script source and
    # followed by the boot walk, the inittab by both too; each is read and decoded once
    texts: dict[tuple[str, str, int], list[str]] = field(default_factory=dict, repr=False)

    def lines(self, ctx: ScanContext, entry: FileEntry, limit: int) -> list[str]:
        """``text_lines(ctx, entry, limit)``, read once per run (callers must not change the list)."""
        key = (entry.layer_id, entry.path, limit)
        if key not in self.texts:
            self.texts[key] = text_lines(ctx, entry, limit)
        return self.texts[key]


# ---- command-line analysis --------------------------------------------------------------------


def split_command(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd, comments=True, posix=True)
    except ValueError:
        return cmd.split()


def port_spec(value: str) -> tuple[str, int | None]:
    """'[addr:]port' -> (addr, port)."""
    value = value.strip("'\"")
    addr, _, port = value.rpartition(":")
    if port.isdecimal():
        return addr.strip("[]"), int(port)
    return "", None


def parse_command(cmd: str, data: ServiceData) -> tuple[Daemon, str, list[str], int | None, str] | None:
    """(daemon, binary path, args, port, bind) when ``cmd`` starts a known daemon."""
    words = split_command(cmd)
    port: int | None = None
    bind = ""
    while words and ("=" in words[0] and not words[0].startswith("/")):  # VAR=value prefix
        words = words[1:]
    if not words or os.path.basename(words[0]) in data.ignore_first:
        return None
    # start-stop-daemon -S ... -x|--exec BIN [-- ARGS]
    if os.path.basename(words[0]) == "start-stop-daemon":
        if not any(w in ("-S", "--start") for w in words):
            return None
        exe = ""
        for i, w in enumerate(words):
            if w in ("-x", "--exec", "-a", "--startas") and i + 1 < len(words):
                exe = words[i + 1]
            elif w.startswith("--exec="):
                exe = w.split("=", 1)[1]
        args = words[words.index("--") + 1 :] if "--" in words else []
        words = [exe, *args] if exe else []
    while words and os.path.basename(words[0]) in data.skip_words:
        words = words[1:]
        while words and words[0].startswith("-") and os.path.basename(words[0]) not in data.daemons:
            words = words[1:]
    if words and os.path.basename(words[0]) in data.svd:
        # tcpsvd [-opts [arg]] IP PORT PROG ARGS
        rest = words[1:]
        positional = []
        i = 0
        while i < len(rest):
            w = rest[i]
            if w.startswith("-") and not positional:
                i += 2 if w in ("-c", "-C", "-b", "-u", "-l", "-t") else 1
                continue
            positional.append(w)
            i += 1
        if len(positional) >= 3:
            bind = "0.0.0.0" if positional[0] in ("0", "0.0.0.0") else positional[0]
            port = int(positional[1]) if positional[1].isdecimal() else None
            words = positional[2:]
    if not words:
        return None
    binary = words[0]
    if "/init.d/" in binary or "/rc.d/" in binary:
        return None  # /etc/init.d/uhttpd restart: service control, the script itself is parsed
    base = os.path.basename(binary)
    daemon = data.daemons.get(base)
    if daemon is None:
        return None
    args = words[1:]
    if args and args[0] in ("--version", "--help", "-version", "-help"):
        return None  # asks the program about itself
    if daemon.port_option and daemon.port_option in args:
        i = args.index(daemon.port_option)
        if i + 1 < len(args):
            addr, p = port_spec(args[i + 1])
            port, bind = p or port, addr or bind
    return daemon, binary, args, port if port is not None else daemon.port, bind


def opt_value(args: list[str] | tuple[str, ...], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag) and len(a) > len(flag) and not a.startswith("--"):
            return a[len(flag) :]
    return None


def is_shell(prog: str, data: ServiceData) -> bool:
    base = os.path.basename(prog.strip("'\"")).lstrip("-")
    return base in data.shells or f"-{base}" in data.shells


# ---- finding builders ------------------------------------------------------------------------

RULES: dict[str, tuple[Severity, str, tuple[str, ...], str]] = {
    "services.telnet": (
        Severity.HIGH,
        "Telnet server enabled (plaintext remote login)",
        CRA_PLAINTEXT,
        "Remove telnetd; offer SSH with per-device keys/passwords if remote login is needed.",
    ),
    "services.rlogin": (
        Severity.HIGH,
        "rlogin/rsh/rexec server enabled",
        CRA_PLAINTEXT,
        "Remove the r-services; use SSH.",
    ),
    "services.shell-no-login": (
        Severity.CRITICAL,
        "Shell without login",
        CRA_SERVICES,
        "Run a login program (login, getty without -n/-l shell) or sulogin; "
        "never a shell directly on a port or console.",
    ),
    "services.ssh-root-password": (
        Severity.MEDIUM,
        "SSH allows root login with a password",
        CRA_SERVICES,
        "Disable root password logins (PermitRootLogin prohibit-password, dropbear "
        "-g/-w, OpenWrt RootPasswordAuth off); use keys.",
    ),
    "services.ssh-empty-password": (
        Severity.HIGH,
        "SSH accepts empty passwords",
        CRA_SERVICES,
        "Set PermitEmptyPasswords no.",
    ),
    "services.snmp-community": (
        Severity.HIGH,
        "SNMP with a default community",
        CRA_PLAINTEXT,
        "Remove default communities; use SNMPv3 with per-device credentials.",
    ),
    "services.upnp-wan": (
        Severity.HIGH,
        "UPnP IGD reachable from the WAN side",
        CRA_SERVICES,
        "Listen on LAN interfaces only; disable UPnP by default.",
    ),
    "services.ftp-anonymous": (
        Severity.HIGH,
        "Anonymous FTP enabled",
        CRA_PLAINTEXT,
        "Disable anonymous FTP (anonymous_enable=NO) or drop FTP.",
    ),
    "services.tftp": (
        Severity.MEDIUM,
        "TFTP server enabled (no authentication)",
        CRA_PLAINTEXT,
        "Do not run TFTP on production devices.",
    ),
    "services.http-admin": (
        Severity.MEDIUM,
        "Web interface served over plain HTTP",
        CRA_PLAINTEXT,
        "Serve the admin interface over HTTPS only, with a per-device certificate.",
    ),
    "services.mqtt-anonymous": (
        Severity.HIGH,
        "MQTT broker allows anonymous clients",
        CRA_SERVICES,
        "Set allow_anonymous false and configure a password file or TLS client certs.",
    ),
    "services.debug-daemon": (
        Severity.HIGH,
        "Debug daemon shipped or started",
        CRA_SERVICES,
        "Remove gdbserver/adbd from production images.",
    ),
    "services.smb-guest": (
        Severity.MEDIUM,
        "Samba share open to guests",
        CRA_SERVICES,
        "Disable guest access (guest ok = no, map to guest = never).",
    ),
}


def make_finding(
    ctx: ScanContext, rule: str, entry: FileEntry, line: int | None, evidence: str, title_suffix: str = ""
) -> Finding:
    sev, title, cra, fix = RULES[rule]
    return finding(
        ctx,
        entry,
        rule_id=rule,
        category=CAT,
        severity=sev,
        title=title + (f": {title_suffix}" if title_suffix else ""),
        cra=cra,
        line=line,
        evidence=evidence[:300],
        remediation=fix,
        fp=fingerprint(f"{rule}:{evidence}"),
    )


# ---- sources ----------------------------------------------------------------------------------


class Source:
    """One start mechanism or daemon config format."""

    globs: ClassVar[tuple[str, ...]] = ()

    def gather(self, ctx: ScanContext, data: ServiceData, out: Gathered) -> None:
        for entry in regular_files(ctx, self.globs):
            self.parse(ctx, data, entry, out.lines(ctx, entry, CONFIG_LIMIT), out)

    def parse(
        self, ctx: ScanContext, data: ServiceData, entry: FileEntry, lines: list[str], out: Gathered
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def add_start(
    data: ServiceData, out: Gathered, cmd: str, started_by: str, entry: FileEntry, line: int
) -> None:
    parsed = parse_command(cmd, data)
    if parsed is None:
        return
    daemon, binary, args, port, bind = parsed
    out.starts.append(Start(daemon, binary, tuple(args), started_by, entry, line, port, bind))


def kv_lines(lines: list[str], sep: str = r"\s+") -> Iterator[tuple[int, str, str]]:
    for no, line in enumerate(lines, 1):
        t = line.strip()
        if not t or t.startswith(("#", ";")):
            continue
        parts = re.split(sep, t, maxsplit=1)
        yield no, parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


def is_on(value: str, default: bool = True) -> bool:
    if value == "":
        return default
    return value.lower() in ("1", "on", "yes", "true", "enabled")
