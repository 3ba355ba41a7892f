"""Where cra-fw finds its data files."""

from __future__ import annotations

import os
from pathlib import Path


def signatures_dir() -> Path:
    """The ``signatures/`` folder: ``$CRA_FW_SIGNATURES`` or the one beside the package."""
    env = os.environ.get("CRA_FW_SIGNATURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "signatures"


def cache_dir() -> Path:
    """Per-user cache: ``$XDG_CACHE_HOME/cra-fw`` (``~/.cache/cra-fw``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cra-fw"
