"""vsftpd and ProFTPD configuration."""

from __future__ import annotations

import re

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines, make_finding


class VsftpdConf(Source):
    globs = ("*/vsftpd.conf", "*/vsftpd/vsftpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        opts = {k.lower(): (no, v.strip()) for no, k, v in kv_lines(lines, r"=")}
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


class ProftpdConf(Source):
    globs = ("*/proftpd.conf", "*/proftpd/proftpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, line in enumerate(lines, 1):
            if re.match(r"\s*<Anonymous\b", line, re.I):
                out.findings.append(make_finding(ctx, "services.ftp-anonymous", entry, no, line.strip()))
