"""The binwalk backend: Debian's binwalk 2.3 signature scan and extraction of one file.

binwalk lives in the system interpreter's site-packages, so it runs in a
subprocess (``binwalk_driver.py``) and reports JSON.  Its results are mapped to
canonical formats with the same table as unblob's; descriptions that name no
container format (strings, copyright lines...) are ignored.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from cra_fw.fstree import remove_tree
from cra_fw.paths import package_file
from cra_fw.unpack.formats import load_formats
from cra_fw.unpack.interface import Backend, BackendResult, Carve

SYSTEM_PYTHON = os.environ.get("CRA_FW_BINWALK_PYTHON", "/usr/bin/python3")
_SIZE = re.compile(r"(?:image |)size:\s*(\d+)\s*bytes", re.IGNORECASE)
_FOOTER = re.compile(r"^End of Zip archive, footer length:\s*(\d+)")
# binwalk 2.3 lists these formats but has no working extractor for them here
_NO_EXTRACTOR = {"ext": "binwalk mounts ext images, which the sandbox forbids"}


class BinwalkBackend(Backend):
    name = "binwalk"

    def available(self) -> str | None:
        if not Path(SYSTEM_PYTHON).exists():
            return f"{SYSTEM_PYTHON} is missing: apt-get install python3 binwalk"
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import binwalk"], capture_output=True, check=False)
        if probe.returncode != 0:
            return "Debian's binwalk is missing: apt-get install binwalk"
        return None

    def prepare(self) -> None:
        load_formats()

    def carve(self, path: Path, outdir: Path) -> BackendResult:
        work = outdir / ".binwalk"
        work.mkdir(parents=True, exist_ok=True)
        # binwalk reads and creates ~/.config/binwalk (magic, plugins, extract.conf): give it a
        # fresh one inside the sandbox's own folder, so it runs where HOME is empty or read-only
        # and a user's binwalk plugins never run on hostile input.
        home = work / ".home"
        (home / ".config").mkdir(parents=True, exist_ok=True)
        # binwalk calls jefferson / ubireader from PATH; keep the caller's PATH first
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        proc = subprocess.run(
            [SYSTEM_PYTHON, str(package_file("unpack/binwalk_driver.py")), str(path), str(work)],
            capture_output=True,
            check=False,
            env=env,
            cwd=str(work),
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"binwalk failed: {tail[0][:300]}")
        results = json.loads(proc.stdout or b"[]")
        table = load_formats()
        size = path.stat().st_size
        found = []
        for item in results:
            footer = _FOOTER.match(item["description"])
            if footer and found and found[-1][1].name == "zip":
                # the end of central directory closes the zip that started earlier
                found[-1][0]["end"] = int(item["offset"]) + int(footer.group(1))
                continue
            spec = table.from_binwalk(item["description"])
            if spec is None or not item.get("valid", True):
                continue
            found.append((item, spec))
        found.sort(key=lambda pair: pair[0]["offset"])
        carves: list[Carve] = []
        covered_until = -1
        for idx, (item, spec) in enumerate(found):
            start = int(item["offset"])
            if start < covered_until:
                continue  # inside a region already claimed (binwalk reports inner signatures too)
            if (
                carves
                and carves[-1].format == spec.name
                and carves[-1].extracted
                and not item.get("extracted")
            ):
                # binwalk lists every member header of an archive; the first one extracted them all
                continue
            end = int(item["end"]) if "end" in item else _end_of(item, found[idx + 1 :], size)
            covered_until = end
            if not spec.container:
                carves.append(Carve(spec.name, start, end, item["description"][:120], container=False))
                continue
            target = outdir / f"{start:08x}.{spec.name}"
            moved = _collect(item.get("extracted", []), target)
            error = ""
            if not moved:
                error = _NO_EXTRACTOR.get(spec.name, "binwalk extracted nothing")
            carves.append(
                Carve(
                    spec.name,
                    start,
                    end,
                    item["description"][:120],
                    extracted=str(target) if moved else "",
                    error=error,
                    unsupported=not moved and spec.name in _NO_EXTRACTOR,
                )
            )
        remove_tree(work)
        return BackendResult(carves=tuple(carves))


def _end_of(item: dict, later: list, size: int) -> int:
    start = int(item["offset"])
    match = _SIZE.search(item["description"])
    if match:
        end = start + int(match.group(1))
        if start < end <= size:
            return end
    for nxt, _spec in later:
        if int(nxt["offset"]) > start:
            return int(nxt["offset"])
    return size


def _collect(extracted: list[str], target: Path) -> bool:
    """Move what binwalk extracted for one result into ``target`` (the layer root)."""
    items = [Path(p) for p in extracted if os.path.lexists(p)]
    if not items:
        return False
    if len(items) == 1 and items[0].is_dir() and not items[0].is_symlink():
        os.rename(items[0], target)
        return True
    target.mkdir(parents=True, exist_ok=True)
    for item in items:
        os.rename(item, target / item.name)
    return True
