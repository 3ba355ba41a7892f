"""Run cve-bin-tool's VersionScanner over a tree, offline, and print JSON (used by bench_identify.py).

Runs under the Python that has cve-bin-tool installed.  Offline means: an empty database in
$HOME/.cache/cve-bin-tool, no updates, and checkers whose version maps are fetched from the web
at import time (sqlite) get an empty map instead of aborting the whole scan.  Files are scanned
one at a time so one failing checker loses only that file.
"""

import json
import os
import sys

import cve_bin_tool.version_signature as vsig

_orig = vsig.VersionSignatureDb.get_mapping_data


def _offline_mapping(self):
    try:
        return _orig(self)
    except Exception:  # noqa: BLE001 - no network here
        return []


vsig.VersionSignatureDb.get_mapping_data = _offline_mapping
os.makedirs(os.path.join(os.path.expanduser("~"), ".cache", "cve-bin-tool"), exist_ok=True)

from cve_bin_tool.version_scanner import VersionScanner  # noqa: E402

scanner = VersionScanner(should_extract=False)
found, errors = [], 0
for dirpath, _, files in os.walk(sys.argv[1]):
    for fn in files:
        path = os.path.join(dirpath, fn)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            for info in scanner.scan_file(path):
                if info:
                    product, where = info
                    found.append([product.vendor, product.product, product.version, str(where)])
        except Exception:  # noqa: BLE001
            errors += 1
sys.stdout.write("\n@@JSON@@" + json.dumps({"found": found, "errors": errors}) + "\n")
