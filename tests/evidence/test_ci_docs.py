"""The documented CI jobs parse and call only commands and options cra-fw has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cra_fw.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "ci" / "github-actions.yml", ROOT / "docs" / "ci" / "gitlab-ci.yml"]


def _commands(text: str) -> list[list[str]]:
    out = []
    code = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#") and "name:" not in line
    )
    for line in re.findall(r"cra-fw ([a-z][^\n;|&]*)", code):
        words = [w for w in line.replace("\\", " ").split() if w]
        out.append(words)
    return out


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_ci_job_parses_and_uses_real_commands(path):
    text = path.read_text()
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict) and doc
    calls = _commands(text)
    used = {c[0] for c in calls}
    assert {"scan", "sign", "db"} <= used
    for words in calls:
        cmd = main.get_command(None, words[0])
        assert cmd is not None, f"{path.name}: `cra-fw {words[0]}` is not a command"
        if words[0] in ("sign", "verify-evidence", "pack"):
            known = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
            for word in words[1:]:
                if word.startswith("--"):
                    assert word in known, f"{path.name}: `cra-fw {words[0]} {word}` is not an option"
    assert "findings.sarif" in text and "evidence.zip.sig" in text and "junit.xml" in text
