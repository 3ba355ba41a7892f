"""Service signature data: daemons, ports, wrappers and word lists from ``signatures/services/``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir


@dataclass(frozen=True)
class Daemon:
    service: str
    binaries: tuple[str, ...]
    protocol: str
    port: int | None
    port_option: str
    auth: str
    rule: str


@dataclass(frozen=True)
class ServiceData:
    daemons: dict[str, Daemon]  # by binary basename
    skip_words: frozenset[str]
    svd: frozenset[str]
    ignore_first: frozenset[str]
    communities: frozenset[str]
    inetd_ports: dict[str, tuple[str, int]]
    shells: frozenset[str]
    login_programs: frozenset[str]
    rc_binaries: frozenset[str] = frozenset()  # vendor rc programs whose strings are start commands


@lru_cache(maxsize=4)
def load_data(base: Path | None = None) -> ServiceData:
    """Load and validate ``signatures/services/`` once."""
    root = (base or signatures_dir()) / "services"
    try:
        d = tomllib.loads((root / "daemons.toml").read_text())
        c = tomllib.loads((root / "config-rules.toml").read_text())
        daemons: dict[str, Daemon] = {}
        for item in d["daemon"]:
            dm = Daemon(
                item["service"],
                tuple(item["binaries"]),
                item["protocol"],
                item.get("port"),
                item.get("port_option", ""),
                item["auth"],
                item["rule"],
            )
            for b in dm.binaries:
                daemons[b] = dm
        return ServiceData(
            daemons=daemons,
            skip_words=frozenset(d["wrappers"]["skip_words"]),
            svd=frozenset(d["wrappers"]["svd"]),
            ignore_first=frozenset(d["ignore"]["first_words"]),
            communities=frozenset(c["default_snmp_communities"]),
            inetd_ports={k: (v[0], int(v[1])) for k, v in c["inetd_ports"].items()},
            shells=frozenset(c["shells"]),
            login_programs=frozenset(c["login_programs"]),
            rc_binaries=frozenset(d["wrappers"].get("rc_binaries", ())),
        )
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise SignatureDataError(
            f"service signatures in {root} are unusable ({exc}); restore them from the cra-fw release"
        ) from exc
