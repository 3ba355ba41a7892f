#!/usr/bin/env python3
"""Write signatures/kernel/kbuild-map.tsv.gz from a Linux source tree's Makefiles/Kbuild files.

    python scripts/kbuild_map.py /usr/src/linux-source-6.1 signatures/kernel/kbuild-map.tsv.gz

One line per source file that a Kconfig symbol gates: ``path<TAB>SYMBOLS<TAB>object``.  SYMBOLS are
every ``CONFIG_*`` on the way from the top-level directory to the file (directory gates from the
parent Makefile's ``obj-$(CONFIG_X) += dir/``, the object's own ``obj-$(CONFIG_Y) += name.o``, a
composite object's part ``name-$(CONFIG_Z) += part.o``), all of which must be y or m for the file
to be built; ``object`` is the module the file ends up in (``drivers/net/wireless/ath/ath9k/ath9k``)
for ``modules.order``/``modules.builtin``.  Lines whose gate is not a plain ``$(CONFIG_*)``, ``y``
or ``m`` (helper variables, ``$(subst ...)``) get ``?`` and are never used to filter anything.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

ASSIGN = re.compile(
    r"^\s*([A-Za-z0-9_.\-]+|obj|lib)-(\$\((CONFIG_[A-Za-z0-9_]+)\)|y|m|objs|\$\([^)]*\))\s*[:+]?=\s*(.*)$"
)


def logical_lines(text: str):
    buf = ""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0] if not raw.lstrip().startswith("#") else ""
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        yield buf + line
        buf = ""
    if buf:
        yield buf


def parse(root: Path):
    # dir -> list of (target, gate-symbol or "" or "?")
    dir_gates: dict[str, list[tuple[str, str]]] = {}
    objects: dict[str, dict[str, str]] = {}  # dir -> {object name: gate}
    parts: dict[str, dict[str, list[tuple[str, str]]]] = {}  # dir -> composite -> [(part, gate)]
    for mk in sorted(list(root.rglob("Makefile")) + list(root.rglob("Kbuild"))):
        rel = mk.parent.relative_to(root).as_posix()
        d = "" if rel == "." else rel + "/"
        for line in logical_lines(mk.read_text(errors="replace")):
            m = ASSIGN.match(line)
            if not m:
                continue
            lhs, gate_raw, symbol, rhs = m.group(1), m.group(2), m.group(3), m.group(4)
            gate = symbol or ("" if gate_raw in ("y", "m", "objs") else "?")
            for tok in rhs.split():
                if "$" in tok:
                    continue
                if lhs in ("obj", "lib"):
                    if tok.endswith("/"):
                        dir_gates.setdefault(d + tok, []).append((d, gate))
                    elif tok.endswith(".o"):
                        objects.setdefault(d, {})[tok[:-2]] = gate
                elif tok.endswith(".o"):
                    parts.setdefault(d, {}).setdefault(lhs, []).append((tok[:-2], gate))
    return dir_gates, objects, parts


def dir_symbols(d: str, dir_gates, cache) -> tuple[str, ...] | None:
    """Symbols gating directory d (None: not reachable from a gate we understand, or '?')."""
    if d in cache:
        return cache[d]
    cache[d] = None
    parents = dir_gates.get(d)
    top = d.count("/") <= 1
    if not parents:
        result = () if top else None
    else:
        options = []
        for parent, gate in parents:
            if gate == "?":
                options = None
                break
            up = dir_symbols(parent, dir_gates, cache) if parent else ()
            if up is None:
                options = None
                break
            options.append(up + ((gate,) if gate else ()))
        # a directory listed under several gates is built when any holds: only the common ones must hold
        result = tuple(sorted(set.intersection(*[set(o) for o in options]))) if options else None
    cache[d] = result
    return result


def main() -> int:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    dir_gates, objects, parts = parse(root)
    cache: dict[str, tuple[str, ...] | None] = {}
    lines = []
    sources = {p.relative_to(root).as_posix() for p in root.rglob("*.c")} if any(root.rglob("*.c")) else None
    for d, objs in objects.items():
        up = dir_symbols(d, dir_gates, cache)
        for name, gate in objs.items():
            for part, part_gate in parts.get(d, {}).get(name, [(name, "")]):
                gates = list(up) if up is not None else ["?"]
                for g in (gate, part_gate):
                    if g:
                        gates.append(g)
                if not [g for g in gates if g]:
                    continue
                src = f"{d}{part}.c"
                if sources is not None and src not in sources:
                    continue
                lines.append(f"{src}\t{','.join(dict.fromkeys(gates))}\t{d}{name}")
    for d in dir_gates:
        syms = dir_symbols(d, dir_gates, cache)
        if syms:  # a directory behind a gate: nothing in it is built when the gate is off
            lines.append(f"{d}\t{','.join(syms)}\t")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# kbuild map from {root.name}: path<TAB>symbols (all must be y or m; ? = unknown)<TAB>object\n"
    out.write_bytes(gzip.compress((header + "\n".join(sorted(set(lines))) + "\n").encode(), mtime=0))
    print(f"{out}: {len(lines)} source files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
