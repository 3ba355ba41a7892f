"""OpenWrt UCI configuration files (``/etc/config/*``), as the credential and service checks read them."""

from __future__ import annotations

import re

_UCI_RE = re.compile(r"""^\s*(config|option|list)\s+(\S+)(?:\s+(?:'([^']*)'|"([^"]*)"|(\S+)))?""")


def parse_uci(lines: list[str]) -> list[tuple[int, str, dict[str, str]]]:
    """UCI sections as (line, type, options); last option wins, lists are joined with spaces."""
    sections: list[tuple[int, str, dict[str, str]]] = []
    for no, line in enumerate(lines, 1):
        m = _UCI_RE.match(line)
        if not m:
            continue
        kind, key = m.group(1), m.group(2).strip("'\"")
        value = next((g for g in m.group(3, 4, 5) if g is not None), "")
        if kind == "config":
            sections.append((no, key, {"_name": value, "_line": str(no)}))
        elif sections:
            opts = sections[-1][2]
            if kind == "list" and key in opts:
                opts[key] += " " + value
            else:
                opts[key] = value
            opts.setdefault(f"_line_{key}", str(no))
    return sections
