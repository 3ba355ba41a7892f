"""inetd.conf and xinetd services."""

from __future__ import annotations

import os

from cra_fw.checks.services.base import Source, Start, parse_command


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
