"""Services and attack surface, found statically.

Each start mechanism and each daemon configuration is one small
:class:`~cra_fw.checks.services.base.Source` class in its own module here
(inittab, init/rc/procd scripts, systemd units, inetd/xinetd, sshd_config,
...), listed once in :data:`SOURCES`.  The ``services`` check runs every
source once and merges starts with configuration into ``services[]``.

Daemon names, ports and word lists live in ``signatures/services/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

from cra_fw.checks.interface import Check, Service
from cra_fw.checks.services.base import (
    CAT,
    ConfigFacts,
    Gathered,
    Source,
    Start,
    is_shell,
    make_finding,
    opt_value,
    parse_command,
)
from cra_fw.checks.services.bootpath import BootPath
from cra_fw.checks.services.data import ServiceData, load_data
from cra_fw.checks.services.dnsmasq import DnsmasqConf
from cra_fw.checks.services.ftp import ProftpdConf, VsftpdConf
from cra_fw.checks.services.http import HttpConfigs
from cra_fw.checks.services.inetd import Inetd
from cra_fw.checks.services.inittab import Inittab
from cra_fw.checks.services.mqtt import MosquittoConf
from cra_fw.checks.services.openwrt import OpenWrtConfig
from cra_fw.checks.services.samba import SambaConf
from cra_fw.checks.services.scripts import InitScripts
from cra_fw.checks.services.snmp import SnmpdConf
from cra_fw.checks.services.ssh import DropbearDefaults, SshdConfig
from cra_fw.checks.services.systemd import SystemdUnits
from cra_fw.checks.services.upnp import MiniupnpdConf
from cra_fw.context import ScanContext
from cra_fw.records import FileKind, Finding, Severity

__all__ = ["SOURCES", "Services", "load_data", "merge", "parse_command", "start_findings"]

# Every source, in the order they run (starts and configs are merged in this order).
SOURCES: tuple[type[Source], ...] = (
    Inittab,
    InitScripts,
    BootPath,
    SystemdUnits,
    Inetd,
    SshdConfig,
    DropbearDefaults,
    OpenWrtConfig,
    SnmpdConf,
    VsftpdConf,
    ProftpdConf,
    MosquittoConf,
    MiniupnpdConf,
    HttpConfigs,
    SambaConf,
    DnsmasqConf,
)


def start_findings(ctx: ScanContext, s: Start, data: ServiceData) -> Iterator[Finding]:
    """Findings implied by a daemon's command line alone."""
    cmd = " ".join([s.binary, *s.args])
    where = f"{s.started_by}: {cmd}"
    d = s.daemon
    if d.service == "telnet":
        shell = opt_value(s.args, "-l")
        if shell and is_shell(shell, data):
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
    if d.service == "ftp" and os.path.basename(s.binary) == "ftpd" and opt_value(s.args, "-a"):
        yield make_finding(ctx, "services.ftp-anonymous", s.entry, s.line, where + " (-a: anonymous login)")
    if d.service == "http":
        base = os.path.basename(s.binary)
        if base in ("lighttpd", "nginx", "lighttpd-angel"):
            return  # their configs decide (TLS or not)
        if base == "uhttpd" and "-p" not in s.args:
            return  # listeners come from /etc/config/uhttpd (checked there) unless -p is given
    if d.rule:
        yield make_finding(ctx, d.rule, s.entry, s.line, where)


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
                name=s.daemon.service,
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
