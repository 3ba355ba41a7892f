"""miniupnpd configuration."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, is_on, kv_lines, make_finding


class MiniupnpdConf(Source):
    globs = ("*/miniupnpd.conf", "*/miniupnpd/miniupnpd.conf", "*/upnpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        opts = {k: (no, v.strip()) for no, k, v in kv_lines(lines, r"=")}
        ext = opts.get("ext_ifname", (0, ""))[1]
        for no, k, v in kv_lines(lines, r"="):
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
        if is_on(opts.get("enable_upnp", (0, "yes"))[1]):
            out.configs.append(
                ConfigFacts("upnp", entry, 1900, opts.get("listening_ip", (0, ""))[1], "none", "udp")
            )
