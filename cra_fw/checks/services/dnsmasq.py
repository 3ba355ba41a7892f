"""dnsmasq configuration."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines


class DnsmasqConf(Source):
    globs = ("*/dnsmasq.conf",)

    def parse(self, ctx, data, entry, lines, out):
        port = 53
        for _no, k, v in kv_lines(lines, r"="):
            if k == "port" and v.isdecimal():
                port = int(v)
        out.configs.append(ConfigFacts("dns-dhcp", entry, port, protocol="udp", auth="none"))
