"""Shell start scripts: init.d, rc and OpenWrt procd."""

from __future__ import annotations

import re

from cra_fw.checks.interface import logical_lines, regular_files
from cra_fw.checks.services.base import SCRIPT_LIMIT, Source, add_start

_SCRIPT_GLOBS = (
    "*/etc/init.d/*",
    "*/etc/rc.d/*",
    "*/etc/rc.local",
    "*/etc/rcS",
    "*/etc/rc",
    "*/etc/rc.sysinit",
    "*/etc/rc.d/rc.*",
    "*/etc/init/*.conf",
    "*/etc/rc.common",
    "*/etc/profile",
    "*/etc/rc.sh",
    "*/etc/rcS.d/*",
    "*/etc/rc?.d/*",
    "*/etc/boot.sh",
    "*/etc/start*.sh",
    "*/etc/init.sh",
    "*/usr/etc/rcS",
    "*/usr/etc/init.d/*",
    "*/etc/scripts/*.sh",
)


_ASSIGN_RE = re.compile(r"""^\s*([A-Za-z_][A-Za-z0-9_]*)=(["']?)([^"'\s;$`]+)\2\s*$""")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class InitScripts(Source):
    """Shell start scripts: init.d/rc/procd.  A line that runs a known daemon starts it."""

    globs = _SCRIPT_GLOBS

    def gather(self, ctx, data, out):
        seen: set[tuple[str, str]] = set()
        for entry in regular_files(ctx, self.globs):
            if (entry.layer_id, entry.sha256 or entry.path) in seen:
                continue  # rc?.d copies of the same script
            seen.add((entry.layer_id, entry.sha256 or entry.path))
            self.parse(ctx, data, entry, out.lines(ctx, entry, SCRIPT_LIMIT), out)

    def parse(self, ctx, data, entry, lines, out):
        procd_cmd: list[str] | None = None
        procd_line = 0
        variables = {m.group(1): m.group(3) for m in (_ASSIGN_RE.match(line) for line in lines) if m}
        for no, text in logical_lines(lines):
            t = _VAR_RE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text.strip())
            if not t or t.startswith("#"):
                continue
            where = f"script:{entry.path}:{no}"
            if t.startswith("procd_set_param command"):
                if procd_cmd:
                    add_start(
                        data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line
                    )
                procd_cmd, procd_line = [t.split("command", 1)[1].strip()], no
                continue
            if t.startswith("procd_append_param command") and procd_cmd is not None:
                procd_cmd.append(t.split("command", 1)[1].strip())
                continue
            if t.startswith("procd_close_instance") and procd_cmd is not None:
                add_start(
                    data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line
                )
                procd_cmd = None
                continue
            for part in re.split(r"\s*(?:&&|\|\||;|&(?!>)|\bthen\b|\belse\b|\bdo\b)\s*", t):
                part = part.strip().rstrip("&").strip()
                if part:
                    add_start(data, out, part, where, entry, no)
        if procd_cmd:
            add_start(data, out, " ".join(procd_cmd), f"procd:{entry.path}:{procd_line}", entry, procd_line)
