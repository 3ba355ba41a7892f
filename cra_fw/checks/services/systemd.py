"""Enabled systemd service and socket units."""

from __future__ import annotations

from cra_fw.checks.interface import logical_lines, text_lines
from cra_fw.checks.services.base import ConfigFacts, Source, add_start, make_finding, port_spec
from cra_fw.records import FileKind


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
                add_start(data, out, value.strip().lstrip("-@:+!"), f"systemd:{entry.path}", entry, no)
            elif key in ("ListenStream", "ListenDatagram"):
                addr, port = port_spec(value.strip())
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
