"""Services and attack surface, found statically.

Each start mechanism and each daemon configuration is one small ``Source`` class
(inittab, init/rc/procd scripts, systemd units, inetd/xinetd, sshd_config, ...).
A source reports starts (a daemon command line and who runs it), configuration
facts (port, bind address, authentication) and findings.  The ``services`` check
runs every source once and merges starts with configuration into ``services[]``.

Daemon names, ports and word lists live in ``signatures/services/``.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from cra_fw.checks.interface import (
    CRA_PLAINTEXT,
    CRA_SERVICES,
    Check,
    Service,
    finding,
    fingerprint,
    logical_lines,
    register,
    regular_files,
    text_lines,
)
from cra_fw.context import ScanContext
from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir
from cra_fw.records import FileEntry, FileKind, Finding, Severity

CAT = "services"


@dataclass(frozen=True)
class Daemon:
    service: str
    binaries: tuple[str, ...]
    protocol: str
    port: int | None
    port_option: str
    auth: str
    rule: str


@dataclass(frozen=True)
class ServiceData:
    daemons: dict[str, Daemon]  # by binary basename
    skip_words: frozenset[str]
    svd: frozenset[str]
    ignore_first: frozenset[str]
    communities: frozenset[str]
    inetd_ports: dict[str, tuple[str, int]]
    shells: frozenset[str]
    login_programs: frozenset[str]


@lru_cache(maxsize=4)
def load_data(base: Path | None = None) -> ServiceData:
    """Load and validate ``signatures/services/`` once."""
    root = (base or signatures_dir()) / "services"
    try:
        d = tomllib.loads((root / "daemons.toml").read_text())
        c = tomllib.loads((root / "config-rules.toml").read_text())
        daemons: dict[str, Daemon] = {}
        for item in d["daemon"]:
            dm = Daemon(
                item["service"],
                tuple(item["binaries"]),
                item["protocol"],
                item.get("port"),
                item.get("port_option", ""),
                item["auth"],
                item["rule"],
            )
            for b in dm.binaries:
                daemons[b] = dm
        return ServiceData(
            daemons=daemons,
            skip_words=frozenset(d["wrappers"]["skip_words"]),
            svd=frozenset(d["wrappers"]["svd"]),
            ignore_first=frozenset(d["ignore"]["first_words"]),
            communities=frozenset(c["default_snmp_communities"]),
            inetd_ports={k: (v[0], int(v[1])) for k, v in c["inetd_ports"].items()},
            shells=frozenset(c["shells"]),
            login_programs=frozenset(c["login_programs"]),
        )
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise SignatureDataError(
            f"service signatures in {root} are unusable ({exc}); restore them from the cra-fw release"
        ) from exc


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


# ---- command-line analysis --------------------------------------------------------------------


def split_command(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd, comments=True, posix=True)
    except ValueError:
        return cmd.split()


def _port_spec(value: str) -> tuple[str, int | None]:
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
        rest = [w for w in words[1:]]
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
    if daemon.port_option and daemon.port_option in args:
        i = args.index(daemon.port_option)
        if i + 1 < len(args):
            addr, p = _port_spec(args[i + 1])
            port, bind = p or port, addr or bind
    return daemon, binary, args, port if port is not None else daemon.port, bind


def _opt_value(args: list[str] | tuple[str, ...], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag) and len(a) > len(flag) and not a.startswith("--"):
            return a[len(flag) :]
    return None


def _is_shell(prog: str, data: ServiceData) -> bool:
    base = os.path.basename(prog.strip("'\"")).lstrip("-")
    return base in data.shells or f"-{base}" in data.shells


# ---- finding builders ------------------------------------------------------------------------

_RULES: dict[str, tuple[Severity, str, tuple[str, ...], str]] = {
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
    sev, title, cra, fix = _RULES[rule]
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


def start_findings(ctx: ScanContext, s: Start, data: ServiceData) -> Iterator[Finding]:
    """Findings implied by a daemon's command line alone."""
    cmd = " ".join([s.binary, *s.args])
    where = f"{s.started_by}: {cmd}"
    d = s.daemon
    if d.service == "telnet":
        shell = _opt_value(s.args, "-l")
        if shell and _is_shell(shell, data):
            yield make_finding(ctx, "services.shell-no-login", s.entry, s.line, where, "telnetd runs a shell")
    runtime_args = any("$" in a for a in s.args)  # flags built at run time from the config
    if (
        d.service == "ssh"
        and os.path.basename(s.binary) == "dropbear"
        and not s.started_by.startswith("procd:")
        and not runtime_args
    ):
        # procd scripts add -s/-g/-w from /etc/config/dropbear; that config is checked instead
        flags = "".join(a[1:] for a in s.args if a.startswith("-") and not a.startswith("--"))
        if not any(f in flags for f in "wsg"):
            yield make_finding(ctx, "services.ssh-root-password", s.entry, s.line, where + " (no -w/-s/-g)")
    if d.service == "ftp" and os.path.basename(s.binary) == "ftpd" and _opt_value(s.args, "-a"):
        yield make_finding(ctx, "services.ftp-anonymous", s.entry, s.line, where + " (-a: anonymous login)")
    if d.service == "http":
        base = os.path.basename(s.binary)
        if base in ("lighttpd", "nginx", "lighttpd-angel"):
            return  # their configs decide (TLS or not)
        if base == "uhttpd" and "-p" not in s.args:
            return  # listeners come from /etc/config/uhttpd (checked there) unless -p is given
    if d.rule:
        yield make_finding(ctx, d.rule, s.entry, s.line, where)


# ---- sources ----------------------------------------------------------------------------------


class Source:
    """One start mechanism or daemon config format."""

    globs: ClassVar[tuple[str, ...]] = ()

    def gather(self, ctx: ScanContext, data: ServiceData, out: Gathered) -> None:
        for entry in regular_files(ctx, self.globs):
            self.parse(ctx, data, entry, text_lines(ctx, entry, 2 * 1024 * 1024), out)

    def parse(
        self, ctx: ScanContext, data: ServiceData, entry: FileEntry, lines: list[str], out: Gathered
    ) -> None:  # pragma: no cover - interface
        raise NotImplementedError


SOURCES: list[type[Source]] = []


def source(cls: type[Source]) -> type[Source]:
    SOURCES.append(cls)
    return cls


def _add_start(
    data: ServiceData, out: Gathered, cmd: str, started_by: str, entry: FileEntry, line: int
) -> None:
    parsed = parse_command(cmd, data)
    if parsed is None:
        return
    daemon, binary, args, port, bind = parsed
    out.starts.append(Start(daemon, binary, tuple(args), started_by, entry, line, port, bind))


@source
class Inittab(Source):
    """busybox and SysV inittab: id:runlevels:action:process."""

    globs = ("*/etc/inittab",)

    def parse(self, ctx, data, entry, lines, out):
        for no, line in enumerate(lines, 1):
            if line.lstrip().startswith("#") or line.count(":") < 3:
                continue
            ident, _rl, action, process = line.split(":", 3)
            process = process.strip()
            if not process or action in (
                "ctrlaltdel",
                "shutdown",
                "restart",
                "sysinit",
                "wait",
                "boot",
                "bootwait",
                "powerfail",
                "powerwait",
                "powerokwait",
                "initdefault",
            ):
                continue
            tty = ident.strip() or "console"
            words = split_command(process)
            if not words:
                continue
            first = words[0].lstrip("-")
            where = f"inittab:{entry.path}:{no}"
            if _is_shell(first, data):
                out.findings.append(
                    make_finding(
                        ctx,
                        "services.shell-no-login",
                        entry,
                        no,
                        f"{line.strip()} (shell on {tty} without login)",
                        f"shell on {tty}",
                    )
                )
                out.starts.append(
                    Start(
                        Daemon("console-shell", (), "serial", None, "", "none", ""),
                        words[0],
                        tuple(words[1:]),
                        where,
                        entry,
                        no,
                        None,
                        tty,
                    )
                )
                continue
            base = os.path.basename(first)
            if base in ("getty", "agetty"):
                autologin = _opt_value(words, "-a") or _opt_value(words, "--autologin")
                login_prog = _opt_value(words, "-l")
                if ("-n" in words and login_prog and _is_shell(login_prog, data)) or autologin:
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.shell-no-login",
                            entry,
                            no,
                            f"{line.strip()} (getty skips the login)",
                            f"getty on {tty}",
                        )
                    )
                    auth = "none"
                else:
                    auth = "password"
                out.starts.append(
                    Start(
                        Daemon("console-login", (), "serial", None, "", auth, ""),
                        words[0],
                        tuple(words[1:]),
                        where,
                        entry,
                        no,
                        None,
                        tty,
                    )
                )
                continue
            _add_start(data, out, process, where, entry, no)


_SCRIPT_GLOBS = (
    "*/etc/init.d/*",
    "*/etc/rc.d/*",
    "*/etc/rc.local",
    "*/etc/rcS",
    "*/etc/rc",
    "*/etc/rc.sysinit",
    "*/etc/rc.d/rc.*",
    "*/etc/init/*.conf",
    "*/etc/rc.common",
    "*/etc/profile",
    "*/etc/rc.sh",
    "*/etc/rcS.d/*",
    "*/etc/rc?.d/*",
    "*/etc/boot.sh",
    "*/etc/start*.sh",
    "*/etc/init.sh",
    "*/usr/etc/rcS",
    "*/usr/etc/init.d/*",
    "*/etc/scripts/*.sh",
)


_ASSIGN_RE = re.compile(r"""^\s*([A-Za-z_][A-Za-z0-9_]*)=(["']?)([^"'\s;$`]+)\2\s*$""")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@source
class InitScripts(Source):
    """Shell start scripts: init.d/rc/procd.  A line that runs a known daemon starts it."""

    globs = _SCRIPT_GLOBS

    def gather(self, ctx, data, out):
        seen: set[tuple[str, str]] = set()
        for entry in regular_files(ctx, self.globs):
            if (entry.layer_id, entry.sha256 or entry.path) in seen:
                continue  # rc?.d copies of the same script
            seen.add((entry.layer_id, entry.sha256 or entry.path))
            self.parse(ctx, data, entry, text_lines(ctx, entry, 1024 * 1024), out)

    def parse(self, ctx, data, entry, lines, out):
        procd_cmd: list[str] | None = None
        procd_line = 0
        variables = {m.group(1): m.group(3) for m in (_ASSIGN_RE.match(line) for line in lines) if m}
        for no, text in logical_lines(lines):
            t = _VAR_RE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text.strip())
            if not t or t.startswith("#"):
                continue
            where = f"script:{entry.path}:{no}"
            if t.startswith("procd_set_param command"):
                if procd_cmd:
                    _add_start(
                        data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line
                    )
                procd_cmd, procd_line = [t.split("command", 1)[1].strip()], no
                continue
            if t.startswith("procd_append_param command") and procd_cmd is not None:
                procd_cmd.append(t.split("command", 1)[1].strip())
                continue
            if t.startswith("procd_close_instance") and procd_cmd is not None:
                _add_start(
                    data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line
                )
                procd_cmd = None
                continue
            for part in re.split(r"\s*(?:&&|\|\||;|&(?!>)|\bthen\b|\belse\b|\bdo\b)\s*", t):
                part = part.strip().rstrip("&").strip()
                if part:
                    _add_start(data, out, part, where, entry, no)
        if procd_cmd:
            _add_start(data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line)


@source
class SystemdUnits(Source):
    """systemd .service (ExecStart) and .socket (ListenStream/ListenDatagram) units that are enabled."""

    globs = (
        "*/systemd/system/*.service",
        "*/systemd/system/*.socket",
        "*/systemd/system/*/*.service",
        "*/systemd/system/*/*.socket",
    )

    def gather(self, ctx, data, out):
        enabled: set[tuple[str, str]] = set()
        for e in ctx.iter_files(globs=["*/systemd/system/*.wants/*", "*/systemd/system/*.requires/*"]):
            enabled.add((e.layer_id, e.name))
        units = {}
        for e in ctx.iter_files(globs=list(self.globs)):
            real = ctx.resolve(e) if e.kind == FileKind.SYMLINK else e
            if real is None or real.kind == FileKind.SYMLINK:
                continue
            units.setdefault((e.layer_id, e.name), real)
        for (layer, name), entry in sorted(units.items(), key=lambda kv: kv[1].path):
            in_etc = (
                "/etc/systemd/system/" in entry.path
                and "/" not in entry.path.split("/etc/systemd/system/")[1]
            )
            if (layer, name) not in enabled and not in_etc:
                continue
            self.parse(ctx, data, entry, text_lines(ctx, entry), out)

    def parse(self, ctx, data, entry, lines, out):
        for no, text in logical_lines(lines):
            t = text.strip()
            key, _, value = t.partition("=")
            key = key.strip()
            if key == "ExecStart":
                _add_start(data, out, value.strip().lstrip("-@:+!"), f"systemd:{entry.path}", entry, no)
            elif key in ("ListenStream", "ListenDatagram"):
                addr, port = _port_spec(value.strip())
                unit = entry.name.rsplit(".", 1)[0].rstrip("@")
                daemon = next((d for d in data.daemons.values() if d.port == port), None)
                name = daemon.service if daemon else unit
                out.configs.append(
                    ConfigFacts(
                        name,
                        entry,
                        port,
                        addr or "0.0.0.0",
                        protocol="tcp" if key == "ListenStream" else "udp",
                        notes=f"socket unit {entry.name}",
                    )
                )
                if daemon and daemon.rule:
                    out.findings.append(make_finding(ctx, daemon.rule, entry, no, f"{entry.name}: {t}"))


@source
class Inetd(Source):
    """inetd.conf lines and xinetd service blocks."""

    globs = ("*/etc/inetd.conf", "*/etc/xinetd.conf", "*/etc/xinetd.d/*")

    def parse(self, ctx, data, entry, lines, out):
        if "xinetd" in entry.path:
            self._xinetd(ctx, data, entry, lines, out)
            return
        for no, line in enumerate(lines, 1):
            words = line.split()
            if len(words) < 6 or line.lstrip().startswith("#"):
                continue
            name, _sock, proto, _wait, _user, server, *args = words
            if server == "internal":
                continue
            if os.path.basename(server) == "tcpd" and args:
                server, args = args[0], args[1:]
            if args and os.path.basename(args[0]) == os.path.basename(server):
                args = args[1:]
            svc_name = name.split(":")[-1]
            proto_port = data.inetd_ports.get(svc_name)
            port = proto_port[1] if proto_port else (int(svc_name) if svc_name.isdecimal() else None)
            self._start(ctx, data, entry, no, server, args, port, f"inetd:{entry.path}:{no}", out)

    def _start(self, ctx, data, entry, no, server, args, port, where, out):
        parsed = parse_command(" ".join([server, *args]), data)
        if parsed is None:
            return
        daemon, binary, a, _p, _b = parsed
        out.starts.append(Start(daemon, binary, tuple(a), where, entry, no, port or daemon.port, "0.0.0.0"))

    def _xinetd(self, ctx, data, entry, lines, out):
        block: dict[str, str] = {}
        start = 0
        name = ""
        for no, line in enumerate(lines, 1):
            t = line.strip()
            if t.startswith("service "):
                name, start, block = t.split()[1], no, {}
            elif t == "}" and name:
                if block.get("disable", "no").lower() != "yes" and "server" in block:
                    port = (
                        int(block["port"])
                        if block.get("port", "").isdecimal()
                        else data.inetd_ports.get(name, ("", None))[1]
                    )
                    self._start(
                        ctx,
                        data,
                        entry,
                        start,
                        block["server"],
                        block.get("server_args", "").split(),
                        port,
                        f"xinetd:{entry.path}:{start}",
                        out,
                    )
                name = ""
            elif "=" in t and name:
                k, _, v = t.partition("=")
                block[k.strip().rstrip("+-")] = v.strip()


def _kv_lines(lines: list[str], sep: str = r"\s+") -> Iterator[tuple[int, str, str]]:
    for no, line in enumerate(lines, 1):
        t = line.strip()
        if not t or t.startswith(("#", ";")):
            continue
        parts = re.split(sep, t, maxsplit=1)
        yield no, parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")


@source
class SshdConfig(Source):
    globs = ("*/ssh/sshd_config", "*/sshd_config")

    def parse(self, ctx, data, entry, lines, out):
        opts: dict[str, tuple[int, str]] = {}
        for no, key, value in _kv_lines(lines):
            if key.lower() == "match":
                break  # global section only
            opts.setdefault(key.lower(), (no, value.split("#")[0].strip()))
        root = opts.get("permitrootlogin", (0, ""))
        pw = opts.get("passwordauthentication", (0, "yes"))[1].lower()
        if root[1].lower() == "yes" and pw != "no":
            out.findings.append(
                make_finding(
                    ctx,
                    "services.ssh-root-password",
                    entry,
                    root[0],
                    f"PermitRootLogin yes, PasswordAuthentication {pw}",
                )
            )
        empty = opts.get("permitemptypasswords", (0, "no"))
        if empty[1].lower() == "yes":
            out.findings.append(
                make_finding(ctx, "services.ssh-empty-password", entry, empty[0], "PermitEmptyPasswords yes")
            )
        port = opts.get("port", (0, "22"))[1]
        out.configs.append(
            ConfigFacts(
                "ssh",
                entry,
                int(port) if port.isdecimal() else 22,
                opts.get("listenaddress", (0, ""))[1],
                "password+key" if pw != "no" else "key",
                "tcp",
            )
        )


@source
class DropbearDefaults(Source):
    """/etc/default/dropbear (Debian-style DROPBEAR_EXTRA_ARGS / DROPBEAR_PORT)."""

    globs = ("*/etc/default/dropbear",)

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in _kv_lines(lines, r"="):
            value = value.strip("'\"")
            if key == "DROPBEAR_PORT" and value.isdecimal():
                out.configs.append(ConfigFacts("ssh", entry, int(value), protocol="tcp"))
            if key == "DROPBEAR_EXTRA_ARGS":
                flags = "".join(a[1:] for a in value.split() if a.startswith("-"))
                if not any(f in flags for f in "wsg"):
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.ssh-root-password",
                            entry,
                            no,
                            f"DROPBEAR_EXTRA_ARGS={value!r} (no -w/-s/-g)",
                        )
                    )


def _uci(lines: list[str]) -> list[tuple[int, str, dict[str, str]]]:
    from cra_fw.checks.credentials import parse_uci

    return parse_uci(lines)


def _on(value: str, default: bool = True) -> bool:
    if value == "":
        return default
    return value.lower() in ("1", "on", "yes", "true", "enabled")


@source
class OpenWrtConfig(Source):
    """OpenWrt UCI: dropbear, uhttpd, upnpd, snmpd, samba, vsftpd-like sections."""

    globs = (
        "*/etc/config/dropbear",
        "*/etc/config/uhttpd",
        "*/etc/config/upnpd",
        "*/etc/config/snmpd",
        "*/etc/config/samba",
        "*/etc/config/samba4",
        "*/etc/config/mini_snmpd",
        "*/etc/config/mosquitto",
    )

    def parse(self, ctx, data, entry, lines, out):
        for no, kind, o in _uci(lines):
            ln = lambda k, o=o, no=no: int(o.get(f"_line_{k}", no))  # noqa: E731
            if entry.name == "dropbear" and kind == "dropbear":
                if not _on(o.get("enable", "1")):
                    continue
                port = o.get("Port", "22")
                out.configs.append(
                    ConfigFacts(
                        "ssh",
                        entry,
                        int(port) if port.isdecimal() else 22,
                        o.get("Interface", ""),
                        "password+key" if _on(o.get("PasswordAuth", "")) else "key",
                        "tcp",
                    )
                )
                if _on(o.get("PasswordAuth", "")) and _on(o.get("RootPasswordAuth", "")):
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.ssh-root-password",
                            entry,
                            no,
                            "dropbear: PasswordAuth and RootPasswordAuth on",
                        )
                    )
            elif entry.name == "uhttpd" and kind == "uhttpd":
                http = o.get("listen_http", "")
                if http:
                    for item in http.split():
                        addr, port = _port_spec(item)
                        out.configs.append(
                            ConfigFacts("http", entry, port, addr, protocol="tcp", notes="uhttpd listen_http")
                        )
                    redirect = _on(o.get("redirect_https", "0"), False)
                    if not redirect:
                        out.findings.append(
                            make_finding(
                                ctx,
                                "services.http-admin",
                                entry,
                                ln("listen_http"),
                                f"uhttpd listen_http {http} without redirect_https",
                            )
                        )
            elif kind == "upnpd" and entry.name == "upnpd":
                if _on(o.get("enabled", o.get("enable_upnp", "0")), False):
                    internal = o.get("internal_iface", "lan")
                    ext = o.get("external_iface", "wan")
                    if any(i in ("wan", ext) for i in internal.split()):
                        out.findings.append(
                            make_finding(
                                ctx,
                                "services.upnp-wan",
                                entry,
                                ln("internal_iface"),
                                f"upnpd internal_iface {internal!r} includes the WAN",
                            )
                        )
                    out.configs.append(ConfigFacts("upnp", entry, 1900, internal, "none", "udp"))
            elif entry.name in ("snmpd", "mini_snmpd"):
                for key in ("community", "rocommunity", "rwcommunity"):
                    for com in o.get(key, "").split():
                        if com.lower() in data.communities:
                            out.findings.append(
                                make_finding(
                                    ctx,
                                    "services.snmp-community",
                                    entry,
                                    ln(key),
                                    f"{kind} {key} {com!r}",
                                    com,
                                )
                            )
            elif entry.name.startswith("samba") and kind == "sambashare":
                if _on(o.get("guest_ok", "no"), False):
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.smb-guest",
                            entry,
                            ln("guest_ok"),
                            f"share {o.get('name', '?')}: guest_ok yes",
                        )
                    )


@source
class SnmpdConf(Source):
    globs = ("*/snmpd.conf", "*/snmp/snmpd.conf", "*/mini_snmpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in _kv_lines(lines):
            words = value.split()
            k = key.lower()
            com = ""
            if k in ("rocommunity", "rwcommunity", "rocommunity6", "rwcommunity6") and words:
                com = words[0]
            elif k == "com2sec" and len(words) >= 3:
                com = words[-1]
            elif k == "community" and words:
                com = words[0]
            if com and com.lower() in data.communities:
                out.findings.append(
                    make_finding(
                        ctx,
                        "services.snmp-community",
                        entry,
                        no,
                        f"{key} {value}",
                        f"{com!r} ({'read-write' if 'rw' in k else 'read'})",
                    )
                )
            if k == "agentaddress" and words:
                addr, port = _port_spec(words[0].split(",")[0].replace("udp:", "").replace("tcp:", ""))
                out.configs.append(ConfigFacts("snmp", entry, port or 161, addr, "community", "udp"))


@source
class VsftpdConf(Source):
    globs = ("*/vsftpd.conf", "*/vsftpd/vsftpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        opts = {k.lower(): (no, v.strip()) for no, k, v in _kv_lines(lines, r"=")}
        anon = opts.get("anonymous_enable")
        if anon and anon[1].upper() == "YES":
            out.findings.append(
                make_finding(ctx, "services.ftp-anonymous", entry, anon[0], "anonymous_enable=YES")
            )
        port = opts.get("listen_port", (0, "21"))[1]
        out.configs.append(
            ConfigFacts(
                "ftp",
                entry,
                int(port) if port.isdecimal() else 21,
                opts.get("listen_address", (0, ""))[1],
                "anonymous" if anon and anon[1].upper() == "YES" else "password",
                "tcp",
            )
        )


@source
class ProftpdConf(Source):
    globs = ("*/proftpd.conf", "*/proftpd/proftpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, line in enumerate(lines, 1):
            if re.match(r"\s*<Anonymous\b", line, re.I):
                out.findings.append(make_finding(ctx, "services.ftp-anonymous", entry, no, line.strip()))


@source
class MosquittoConf(Source):
    globs = ("*/mosquitto.conf", "*/mosquitto/*.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in _kv_lines(lines):
            if key == "allow_anonymous" and value.lower() == "true":
                out.findings.append(
                    make_finding(ctx, "services.mqtt-anonymous", entry, no, "allow_anonymous true")
                )
            if key in ("listener", "port") and value.split() and value.split()[0].isdecimal():
                w = value.split()
                out.configs.append(
                    ConfigFacts("mqtt", entry, int(w[0]), w[1] if len(w) > 1 else "", protocol="tcp")
                )


@source
class MiniupnpdConf(Source):
    globs = ("*/miniupnpd.conf", "*/miniupnpd/miniupnpd.conf", "*/upnpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        opts = {k: (no, v.strip()) for no, k, v in _kv_lines(lines, r"=")}
        ext = opts.get("ext_ifname", (0, ""))[1]
        for no, k, v in _kv_lines(lines, r"="):
            if k == "listening_ip" and (v.strip() == ext and ext or v.strip() in ("wan", "0.0.0.0")):
                out.findings.append(
                    make_finding(
                        ctx,
                        "services.upnp-wan",
                        entry,
                        no,
                        f"listening_ip={v.strip()} (ext_ifname={ext or '?'})",
                    )
                )
        if _on(opts.get("enable_upnp", (0, "yes"))[1]):
            out.configs.append(
                ConfigFacts("upnp", entry, 1900, opts.get("listening_ip", (0, ""))[1], "none", "udp")
            )


@source
class HttpConfigs(Source):
    """lighttpd, nginx, boa, mini_httpd: port/bind, and whether TLS is on."""

    globs = (
        "*/lighttpd.conf",
        "*/lighttpd/*.conf",
        "*/nginx.conf",
        "*/nginx/sites-enabled/*",
        "*/nginx/conf.d/*.conf",
        "*/boa.conf",
        "*/boa/boa.conf",
        "*/mini_httpd.conf",
        "*/thttpd.conf",
    )

    def parse(self, ctx, data, entry, lines, out):
        text = "\n".join(lines)
        name = entry.name
        if "lighttpd" in entry.path:
            m = re.search(r"^\s*server\.port\s*=\s*(\d+)", text, re.M)
            port = int(m.group(1)) if m else 80
            bind = re.search(r'^\s*server\.bind\s*=\s*"([^"]*)"', text, re.M)
            tls = re.search(r'ssl\.engine\s*=\s*"enable"', text)
            out.configs.append(
                ConfigFacts(
                    "http",
                    entry,
                    port,
                    bind.group(1) if bind else "",
                    protocol="tcp",
                    notes="TLS" if tls else "plain HTTP",
                )
            )
            if not (tls and m is None) and not (tls and port == 443):
                no = text[: m.start()].count("\n") + 1 if m else None
                out.findings.append(
                    make_finding(
                        ctx,
                        "services.http-admin",
                        entry,
                        no,
                        f"lighttpd server.port {port}{' (TLS only on a socket)' if tls else ''}",
                    )
                )
        elif "nginx" in entry.path:
            for m in re.finditer(r"^\s*listen\s+([^;]+);", text, re.M):
                spec = m.group(1).split()
                addr, port = _port_spec(spec[0] if ":" in spec[0] else f":{spec[0]}")
                ssl = "ssl" in spec
                out.configs.append(
                    ConfigFacts(
                        "http", entry, port, addr, protocol="tcp", notes="TLS" if ssl else "plain HTTP"
                    )
                )
                if not ssl and "return 301 https" not in text and "return 302 https" not in text:
                    no = text[: m.start()].count("\n") + 1
                    out.findings.append(
                        make_finding(ctx, "services.http-admin", entry, no, f"nginx listen {m.group(1)}")
                    )
        else:
            port = 80
            for _no, k, v in _kv_lines(lines, r"\s+|="):
                if k.lower() == "port" and v.strip().isdecimal():
                    port = int(v.strip())
            tls = bool(re.search(r"^\s*ssl\b", text, re.M)) and "mini_httpd" in name
            out.configs.append(
                ConfigFacts("http", entry, port, protocol="tcp", notes="TLS" if tls else "plain HTTP")
            )


@source
class SambaConf(Source):
    globs = ("*/smb.conf", "*/samba/smb.conf")

    def parse(self, ctx, data, entry, lines, out):
        section = ""
        for no, line in enumerate(lines, 1):
            t = line.strip()
            if t.startswith("["):
                section = t.strip("[]")
                continue
            k, _, v = t.partition("=")
            k, v = k.strip().lower(), v.strip().lower()
            if (k in ("guest ok", "public") and v == "yes" and section.lower() != "global") or (
                k == "security" and v == "share"
            ):
                out.findings.append(make_finding(ctx, "services.smb-guest", entry, no, f"[{section}] {t}"))
        out.configs.append(ConfigFacts("smb", entry, 445, protocol="tcp", auth="password"))


@source
class DnsmasqConf(Source):
    globs = ("*/dnsmasq.conf",)

    def parse(self, ctx, data, entry, lines, out):
        port = 53
        for _no, k, v in _kv_lines(lines, r"="):
            if k == "port" and v.isdecimal():
                port = int(v)
        out.configs.append(ConfigFacts("dns-dhcp", entry, port, protocol="udp", auth="none"))


# ---- the check -------------------------------------------------------------------------------


def merge(ctx: ScanContext, g: Gathered) -> list[Service]:
    """Starts enriched with config facts; configured-but-unstarted daemons listed with started_by ''."""
    by_service: dict[str, list[ConfigFacts]] = {}
    for c in g.configs:
        by_service.setdefault(c.service, []).append(c)
    services: list[Service] = []
    seen: set[tuple] = set()
    started = set()
    for s in g.starts:
        cfg = by_service.get(s.daemon.service, [])
        port, bind, auth = s.port, s.bind, s.daemon.auth
        for c in cfg:
            if c.port is not None and (s.port is None or s.port == s.daemon.port):
                port = c.port
            bind = bind or c.bind
            auth = c.auth or auth
        key = (s.daemon.service, s.binary, s.started_by)
        if key in seen:
            continue
        seen.add(key)
        started.add(s.daemon.service)
        services.append(
            Service(
                name=s.daemon.service if s.daemon.binaries else s.daemon.service,
                binary=s.binary,
                port=port,
                bind_address=bind,
                protocol=s.daemon.protocol,
                started_by=s.started_by,
                authentication=auth,
                layer_chain=ctx.layer_chain(s.entry.layer_id),
                config=cfg[0].entry.path if cfg else "",
                notes=" ".join(s.args)[:200],
            )
        )
    for name, cfgs in by_service.items():
        if name in started:
            continue
        c = cfgs[0]
        services.append(
            Service(
                name=name,
                port=c.port,
                bind_address=c.bind,
                protocol=c.protocol,
                started_by="",
                authentication=c.auth or "unknown",
                layer_chain=ctx.layer_chain(c.entry.layer_id),
                config=c.entry.path,
                notes=("configured; no start found. " + c.notes).strip(),
            )
        )
    return services


@register
class Services(Check):
    """Static service inventory and attack-surface findings."""

    name = "services.inventory"
    category = CAT

    def __init__(self) -> None:
        self._services: list[Service] = []

    def collect(self) -> tuple[Service, ...]:
        return tuple(self._services)

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        data = load_data()
        g = Gathered()
        for cls in SOURCES:
            cls().gather(ctx, data, g)
        self._services = merge(ctx, g)
        yield from g.findings
        for s in g.starts:
            yield from start_findings(ctx, s, data)
        # A debug server shipped in the image is reachable by anyone who can start it.
        started = {os.path.basename(s.binary) for s in g.starts}
        for e in ctx.iter_files(kinds=[FileKind.ELF]):
            d = data.daemons.get(e.name)
            if d is not None and d.service in ("gdbserver",) and e.name not in started:
                yield replace(
                    make_finding(ctx, "services.debug-daemon", e, None, f"{e.path} shipped (not started)"),
                    severity=Severity.LOW,
                    title="Debug server binary shipped in the image",
                )
