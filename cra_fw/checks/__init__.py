"""Stage: secure-by-default checks (credentials, secrets, services, hardening).

``run(ctx)`` runs every check listed in :data:`CHECKS` (the contract is in
:mod:`cra_fw.checks.interface`) and returns their findings, the service
inventory and the hardening verdicts.  A check that fails records a
``checks.error`` finding; the others go on.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from cra_fw.checks.configcreds import ConfigAccounts, ScriptLogins, UnsetRootLogin
from cra_fw.checks.credentials import (
    AccountFiles,
    OpenWrtLogins,
    PlaintextCredentials,
    SambaPasswords,
    WebAuthFiles,
)
from cra_fw.checks.hardening import BinaryHardening, summarize
from cra_fw.checks.interface import Check, ElfHardening, HardeningSummary, Service
from cra_fw.checks.mcu import McuCertificates, McuCredentials, McuProtection
from cra_fw.checks.secrets import EmbeddedSecrets
from cra_fw.checks.services import Services
from cra_fw.context import ScanContext
from cra_fw.records import Finding, Severity

__all__ = ["CHECKS", "ChecksResult", "run", "Check", "Service", "ElfHardening", "HardeningSummary"]

# below this many files a process costs more than it saves
PARALLEL_MIN_FILES = 200
# relative cost of the checks that read every file (the rest look at a few named files)
HEAVY = {"secrets.embedded": 10, "hardening.elf": 8, "credentials.plaintext": 6, "services.inventory": 3}

# Every check, one line each, by name (names are unique; tests/test_registries.py holds them to it).
CHECKS: tuple[type[Check], ...] = (
    AccountFiles,  # credentials.accounts
    ConfigAccounts,  # credentials.config-accounts
    OpenWrtLogins,  # credentials.openwrt
    PlaintextCredentials,  # credentials.plaintext
    SambaPasswords,  # credentials.samba
    ScriptLogins,  # credentials.script-logins
    UnsetRootLogin,  # credentials.unset-root
    WebAuthFiles,  # credentials.web
    BinaryHardening,  # hardening.elf
    McuCertificates,  # mcu.certificates
    McuCredentials,  # mcu.credentials
    McuProtection,  # mcu.protection
    EmbeddedSecrets,  # secrets.embedded
    Services,  # services.inventory
)


@dataclass(frozen=True)
class ChecksResult:
    findings: tuple[Finding, ...]
    services: tuple[Service, ...]
    hardening: tuple[ElfHardening, ...]
    hardening_summary: tuple[HardeningSummary, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)  # seconds per check


def _sort_key(f: Finding) -> tuple:
    return (
        f.category,
        f.rule_id,
        f.location.layer_chain,
        f.location.path,
        f.location.line or 0,
        f.location.offset or 0,
        f.fingerprint,
    )


def _run_one(check: Check, ctx: ScanContext) -> tuple[list[Finding], tuple, float]:
    start = time.perf_counter()
    try:
        found = list(check.run(ctx))
        collected = check.collect()
    except Exception as exc:  # noqa: BLE001 - one broken check must not stop the scan
        found = [
            Finding(
                rule_id="checks.error",
                category="checks",
                severity=Severity.INFO,
                title=f"Check {check.name} failed; its results are missing",
                cra_reference=(),
                evidence=f"{type(exc).__name__}: {exc}"[:300],
                remediation="Report this with the image's sha256; other checks ran normally.",
            )
        ]
        collected = ()
    return found, collected, time.perf_counter() - start


# what forked check processes inherit (set just before the fork, never pickled)
_FORKED: dict[str, object] = {}


def _run_forked(index: int) -> tuple[list[Finding], tuple, float]:
    checks = _FORKED["checks"]
    assert isinstance(checks, list)
    return _run_one(checks[index], _FORKED["ctx"])  # type: ignore[arg-type]


def run(ctx: ScanContext, only: tuple[str, ...] = ()) -> ChecksResult:
    """Run the checks (or those named in ``only``, by name or category) over ``ctx``.

    The checks are pure Python: with more than one worker they run in forked processes
    (which inherit the context instead of receiving it), so each worker gets a core.
    """
    checks = [cls() for cls in CHECKS if not only or cls.name in only or cls.category in only]
    workers = max(1, min(len(checks), ctx.options.workers))
    if workers > 1 and len(ctx.files) >= PARALLEL_MIN_FILES and "fork" in mp.get_all_start_methods():
        _FORKED.update(checks=checks, ctx=ctx)
        try:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as processes:
                # the heaviest first, so the last one to start is a light one
                order = sorted(range(len(checks)), key=lambda i: HEAVY.get(checks[i].name, 1), reverse=True)
                done = dict(zip(order, processes.map(_run_forked, order), strict=True))
            results = [done[i] for i in range(len(checks))]
        finally:
            _FORKED.clear()
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda c: _run_one(c, ctx), checks))
    findings: list[Finding] = []
    services: list[Service] = []
    hardening: list[ElfHardening] = []
    timings: dict[str, float] = {}
    for check, (found, collected, seconds) in zip(checks, results, strict=True):
        findings.extend(found)
        timings[check.name] = round(seconds, 4)
        for item in collected:
            if isinstance(item, Service):
                services.append(item)
            elif isinstance(item, ElfHardening):
                hardening.append(item)
    findings.sort(key=_sort_key)
    hardening.sort(key=lambda h: (h.layer_chain, h.path))
    return ChecksResult(
        findings=tuple(findings),
        services=tuple(services),
        hardening=tuple(hardening),
        hardening_summary=summarize(hardening),
        timings=timings,
    )
