"""net-snmp and mini_snmpd configuration."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines, make_finding, port_spec


class SnmpdConf(Source):
    globs = ("*/snmpd.conf", "*/snmp/snmpd.conf", "*/mini_snmpd.conf")

    def parse(self, ctx, data, entry, lines, out):
        for no, key, value in kv_lines(lines):
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
                addr, port = port_spec(words[0].split(",")[0].replace("udp:", "").replace("tcp:", ""))
                out.configs.append(ConfigFacts("snmp", entry, port or 161, addr, "community", "udp"))
