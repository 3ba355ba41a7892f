"""CVSS helpers: v3.x base score from a vector (OSV gives vectors only) and rating bands."""

from __future__ import annotations

import math

from cra_fw.records import Severity

_AV = {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}
_AC = {"L": 0.77, "H": 0.44}
_PR_U = {"N": 0.85, "L": 0.62, "H": 0.27}
_PR_C = {"N": 0.85, "L": 0.68, "H": 0.5}
_UI = {"N": 0.85, "R": 0.62}
_CIA = {"H": 0.56, "L": 0.22, "N": 0.0}


def _roundup(value: float) -> float:
    # CVSS v3.1 Roundup: smallest one-decimal number >= value, robust to float error
    as_int = round(value * 100000)
    if as_int % 10000 == 0:
        return as_int / 100000.0
    return (math.floor(as_int / 10000) + 1) / 10.0


def v3_base_score(vector: str) -> float | None:
    """Base score of a ``CVSS:3.0/...`` or ``CVSS:3.1/...`` vector; None when malformed."""
    if not vector.startswith(("CVSS:3.0/", "CVSS:3.1/")):
        return None
    try:
        metrics = dict(item.split(":", 1) for item in vector.split("/")[1:])
        changed = metrics["S"] == "C"
        pr = (_PR_C if changed else _PR_U)[metrics["PR"]]
        iss = 1 - (1 - _CIA[metrics["C"]]) * (1 - _CIA[metrics["I"]]) * (1 - _CIA[metrics["A"]])
        impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
        exploitability = 8.22 * _AV[metrics["AV"]] * _AC[metrics["AC"]] * pr * _UI[metrics["UI"]]
    except (KeyError, ValueError):
        return None
    if impact <= 0:
        return 0.0
    if changed:
        return _roundup(min(1.08 * (impact + exploitability), 10))
    return _roundup(min(impact + exploitability, 10))


def severity_of(score: float | None, text: str = "", v2_score: float | None = None) -> Severity | None:
    """Qualitative rating of a CVSS v3/v4 score, else a source's severity word, else CVSS v2 bands."""
    if score is None and not text and v2_score is not None:
        # CVSS v2 has no "critical" band: high >= 7.0, medium >= 4.0
        return Severity.HIGH if v2_score >= 7.0 else Severity.MEDIUM if v2_score >= 4.0 else Severity.LOW
    if score is not None:
        if score >= 9.0:
            return Severity.CRITICAL
        if score >= 7.0:
            return Severity.HIGH
        if score >= 4.0:
            return Severity.MEDIUM
        if score > 0:
            return Severity.LOW
        return Severity.INFO
    word = text.strip().lower()
    if word == "moderate":
        word = "medium"
    try:
        return Severity(word) if word else None
    except ValueError:
        return None
