"""Web servers: lighttpd, nginx, boa, mini_httpd, thttpd."""

from __future__ import annotations

import re

from cra_fw.checks.services.base import ConfigFacts, Source, kv_lines, make_finding, port_spec


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
                addr, port = port_spec(spec[0] if ":" in spec[0] else f":{spec[0]}")
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
            for _no, k, v in kv_lines(lines, r"\s+|="):
                if k.lower() == "port" and v.strip().isdecimal():
                    port = int(v.strip())
            tls = bool(re.search(r"^\s*ssl\b", text, re.M)) and "mini_httpd" in name
            out.configs.append(
                ConfigFacts("http", entry, port, protocol="tcp", notes="TLS" if tls else "plain HTTP")
            )
