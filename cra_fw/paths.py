"""Where cra-fw finds its data: the one loader for everything shipped beside the code.

The detection data lives in the repository's top-level ``signatures/`` folder and is
installed as the package ``cra_fw.signatures`` (``setup.py`` maps it); schemas live in
``cra_fw/schemas``.  Both are found with :mod:`importlib.resources`, so an editable
checkout and an installed wheel read the same files and nothing depends on the
current directory or on the repository being present.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from cra_fw.errors import SignatureDataError

SIGNATURES_ENV = "CRA_FW_SIGNATURES"


def _package_folder(package: str, sub: str = "") -> Path:
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise SignatureDataError(
            f"the data package {package} is not installed: reinstall cra-fw "
            f"(or set {SIGNATURES_ENV} to a signatures/ folder)"
        ) from exc
    node = root.joinpath(sub) if sub else root
    if not isinstance(node, Path):
        # cra-fw runs external tools on its own files, so it is never imported from a zip
        raise SignatureDataError(f"{package} is not on a file system ({node!r}): install cra-fw unzipped")
    return node


def signatures_dir() -> Path:
    """The detection data: ``$CRA_FW_SIGNATURES`` when set, else the installed ``cra_fw.signatures``."""
    env = os.environ.get(SIGNATURES_ENV)
    if env:
        return Path(env)
    return _package_folder("cra_fw.signatures")


def schema_path(name: str) -> Path:
    """A JSON schema shipped in ``cra_fw/schemas`` (report, SARIF, CycloneDX, SPDX)."""
    return _package_folder("cra_fw", f"schemas/{name}")


def package_file(name: str) -> Path:
    """A file shipped inside the ``cra_fw`` package, e.g. ``unpack/binwalk_driver.py``."""
    return _package_folder("cra_fw", name)


def cache_dir() -> Path:
    """Per-user cache: ``$XDG_CACHE_HOME/cra-fw`` (``~/.cache/cra-fw``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cra-fw"
