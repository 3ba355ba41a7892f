#!/usr/bin/env python3
"""Peak anonymous and file-backed memory of every process a command starts, by process name.

    python benchmarks/rss_by_process.py cra-fw unpack IMAGE -o OUT -q

Samples /proc every 0.1 s.  The command's own process is listed by pid, its descendants
by name as "child".  getrusage's peak RSS mixes heap with mapped file pages; this tells
them apart (RssAnon grows when a tool loads data, RssFile when it maps the input).
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        out.append(cur)
        try:
            for task in os.listdir(f"/proc/{cur}/task"):
                with open(f"/proc/{cur}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak: dict[str, int] = collections.defaultdict(int)
    while proc.poll() is None:
        for pid in process_tree(proc.pid):
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    name = fh.read().strip()
                with open(f"/proc/{pid}/status") as fh:
                    for line in fh:
                        if line.startswith(("RssAnon:", "RssFile:")):
                            who = str(pid) if pid == proc.pid else "child"
                            key = f"{name}:{who}:{line.split(':')[0]}"
                            peak[key] = max(peak[key], int(line.split()[1]))
            except OSError:
                continue
        time.sleep(0.1)
    for key, kib in sorted(peak.items()):
        if kib >= 1024:
            print(f"{key:<40} {kib // 1024:>6} MiB")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
