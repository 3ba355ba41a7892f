"""OpenWrt UCI service sections (dropbear, uhttpd, upnpd, snmpd, samba)."""

from __future__ import annotations

from cra_fw.checks.services.base import ConfigFacts, Source, is_on, make_finding, port_spec
from cra_fw.checks.uci import parse_uci


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
        for no, kind, o in parse_uci(lines):
            ln = lambda k, o=o, no=no: int(o.get(f"_line_{k}", no))  # noqa: E731
            if entry.name == "dropbear" and kind == "dropbear":
                if not is_on(o.get("enable", "1")):
                    continue
                port = o.get("Port", "22")
                out.configs.append(
                    ConfigFacts(
                        "ssh",
                        entry,
                        int(port) if port.isdecimal() else 22,
                        o.get("Interface", ""),
                        "password+key" if is_on(o.get("PasswordAuth", "")) else "key",
                        "tcp",
                    )
                )
                if is_on(o.get("PasswordAuth", "")) and is_on(o.get("RootPasswordAuth", "")):
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
                        addr, port = port_spec(item)
                        out.configs.append(
                            ConfigFacts("http", entry, port, addr, protocol="tcp", notes="uhttpd listen_http")
                        )
                    redirect = is_on(o.get("redirect_https", "0"), False)
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
                if is_on(o.get("enabled", o.get("enable_upnp", "0")), False):
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
                if is_on(o.get("guest_ok", "no"), False):
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.smb-guest",
                            entry,
                            ln("guest_ok"),
                            f"share {o.get('name', '?')}: guest_ok yes",
                        )
                    )
