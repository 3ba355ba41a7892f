"""Samba smb.conf."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, make_finding


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
