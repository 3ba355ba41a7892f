"""Policy: the ``--fail-on`` threshold and suppressions with a reason and an expiry date.

A policy file is YAML (``.yaml``/``.yml``) or TOML (``.toml``)::

    fail_on: high                       # optional default for --fail-on
    suppress:
      - id: credentials.default-password  # a rule id, or a finding id "rule:hash"
        path: /etc/shadow                 # fnmatch glob on the finding's path (optional = any)
        reason: "test image, reflashed before shipping"
        expires: 2027-06-30               # required; after this day it stops suppressing

Suppressed findings stay in the report with ``suppressed=True`` and the reason;
they never count for ``--fail-on``.  Expired suppressions are returned so the
caller can tell the user.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from cra_fw.errors import PolicyError
from cra_fw.gate import GateError, parse_fail_on
from cra_fw.records import Finding, ScanReport, Severity
from cra_fw.regions import read_limited

MAX_POLICY = 4 * 1024 * 1024  # bytes of a policy file


@dataclass(frozen=True)
class Suppression:
    id: str
    reason: str
    expires: dt.date
    path: str = ""

    def matches(self, f: Finding) -> bool:
        if self.id not in (f.rule_id, f.id):
            return False
        return not self.path or fnmatch.fnmatchcase(f.location.path, self.path)

    def active(self, today: dt.date) -> bool:
        return today <= self.expires


@dataclass(frozen=True)
class Policy:
    suppressions: tuple[Suppression, ...] = ()
    fail_on: Severity | None = None


def load_policy(path: Path) -> Policy:
    """Read a YAML or TOML policy file; PolicyError says what is wrong and where."""
    data = read_limited(path, MAX_POLICY, "policy file", PolicyError)
    try:
        text = data.decode("utf-8")
        if path.suffix.lower() == ".toml":
            raw = tomllib.loads(text)
        else:
            raw = yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise PolicyError(
            f"policy file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"policy file {path}: expected a mapping with 'suppress' and/or 'fail_on'")
    items = raw.get("suppress", []) or []
    if not isinstance(items, list):
        raise PolicyError(f"policy file {path}: 'suppress' must be a list")
    sups = []
    for i, item in enumerate(items, 1):
        where = f"policy file {path}, suppression #{i}"
        if not isinstance(item, dict):
            raise PolicyError(f"{where}: expected a mapping with id, reason, expires")
        missing = [k for k in ("id", "reason", "expires") if not item.get(k)]
        if missing:
            raise PolicyError(
                f"{where}: missing {', '.join(missing)} (every suppression needs an id, "
                "a reason and an expiry date)"
            )
        expires = item["expires"]
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        elif isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError as exc:
                raise PolicyError(f"{where}: expires {expires!r} is not a date (YYYY-MM-DD)") from exc
        elif not isinstance(expires, dt.date):
            raise PolicyError(f"{where}: expires must be a date (YYYY-MM-DD)")
        sups.append(
            Suppression(
                id=str(item["id"]),
                reason=str(item["reason"]),
                expires=expires,
                path=str(item.get("path", "") or ""),
            )
        )
    try:
        fail_on = parse_fail_on(raw.get("fail_on")) if raw.get("fail_on") else None
    except GateError as exc:
        raise PolicyError(f"policy file {path}: {exc}") from exc
    return Policy(tuple(sups), fail_on)


def apply_policy(
    findings: Iterable[Finding], policy: Policy, today: dt.date | None = None
) -> tuple[list[Finding], list[Suppression]]:
    """(findings with matches marked suppressed, expired suppressions that matched something)."""
    today = today or dt.date.today()
    out: list[Finding] = []
    expired: dict[Suppression, None] = {}
    for f in findings:
        mark = None
        for s in policy.suppressions:
            if s.matches(f):
                if s.active(today):
                    mark = s
                    break
                expired.setdefault(s, None)
        if mark is not None:
            f = replace(
                f, suppressed=True, suppression_reason=f"{mark.reason} (until {mark.expires.isoformat()})"
            )
        out.append(f)
    return out, list(expired)


def apply_to_report(
    report: ScanReport, policy_path: Path | None, today: dt.date | None = None
) -> tuple[Policy, list[Suppression]]:
    """Load ``policy_path`` (if any) and mark the report's findings in place.

    Returns the policy (for its ``fail_on`` default) and the expired suppressions that
    matched, which the caller should tell the user about.
    """
    if policy_path is None:
        return Policy(), []
    policy = load_policy(policy_path)
    report.findings, expired = apply_policy(report.findings, policy, today)
    return policy, expired
