"""Hand the scan's CycloneDX SBOM and VEX to OWASP Dependency-Track through its REST API.

Only the documented v1 endpoints are used:

* ``PUT /api/v1/bom`` with JSON ``{project | projectName+projectVersion, autoCreate,
  parentUUID | parentName+parentVersion, bom: <base64>}``; answers ``{"token": uuid}``;
* ``PUT /api/v1/vex`` with JSON ``{project | projectName+projectVersion, vex: <base64>}``;
* ``GET /api/v1/event/token/{uuid}``: ``{"processing": bool}``.

Every request carries the API key in ``X-Api-Key``.  The VEX is sent after the BOM
has been processed (its analysis decisions apply to the BOM's findings).  The
standard library's HTTP client is enough for three JSON calls; failures become one
:class:`DTrackError` whose message says what to fix.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cra_fw import __version__
from cra_fw.errors import CraFwError

SBOM_NAME = "sbom.cdx.json"
VEX_NAME = "vex.cdx.json"
MAX_UPLOAD = 256 * 1024 * 1024
MAX_RESPONSE = 1024 * 1024


class DTrackError(CraFwError):
    """An upload to Dependency-Track failed; the message says why and what to do."""


@dataclass(frozen=True)
class Project:
    """Where the SBOM goes: a project by name and version (or UUID), optionally below a parent."""

    name: str = ""
    version: str = ""
    uuid: str = ""
    parent_name: str = ""
    parent_version: str = ""
    parent_uuid: str = ""
    auto_create: bool = False

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"project": self.uuid}
            if self.uuid
            else {"projectName": self.name, "projectVersion": self.version}
        )
        return out

    def label(self) -> str:
        return self.uuid or f"{self.name} {self.version}"


@dataclass
class UploadResult:
    bom_token: str = ""
    vex_token: str = ""
    processed: list[str] = field(default_factory=list)  # tokens seen finished


class Client:
    """A Dependency-Track server at ``url`` (with or without the trailing ``/api``)."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise DTrackError(f"--url {url!r} is not an http(s) URL of a Dependency-Track server")
        base = url.rstrip("/")
        self.base = base[: -len("/api")] if base.endswith("/api") else base
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-Api-Key", self.api_key)
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", f"cra-fw/{__version__}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked
                raw = resp.read(MAX_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            raise DTrackError(self._explain(exc.code, path, body, exc.read(4096))) from None
        except urllib.error.URLError as exc:
            raise DTrackError(
                f"cannot reach Dependency-Track at {self.base}: {exc.reason} (is the server up and the URL right?)"
            ) from None
        except (TimeoutError, OSError) as exc:
            raise DTrackError(f"Dependency-Track at {self.base} did not answer: {exc}") from None
        if len(raw) > MAX_RESPONSE:
            raise DTrackError(
                f"{path}: the answer is larger than {MAX_RESPONSE} bytes; not Dependency-Track?"
            )
        try:
            out = json.loads(raw or b"{}")
        except ValueError:
            raise DTrackError(
                f"{self.base}{path} answered with something that is not JSON: not Dependency-Track?"
            ) from None
        if not isinstance(out, dict):
            raise DTrackError(f"{self.base}{path} answered {type(out).__name__}, expected a JSON object")
        return out

    def _explain(self, status: int, path: str, body: dict[str, Any] | None, detail: bytes) -> str:
        text = _detail(detail)
        what = "VEX" if path.endswith("/vex") else "BOM" if path.endswith("/bom") else "token"
        if status == 401:
            return "Dependency-Track refused the API key (401 Unauthorized): check --api-key-env and the key"
        if status == 403:
            need = (
                "BOM_UPLOAD" if what == "BOM" else "VULNERABILITY_ANALYSIS" if what == "VEX" else "BOM_UPLOAD"
            )
            if body is not None and body.get("autoCreate"):
                need += " and PROJECT_CREATION_UPLOAD (for --auto-create)"
            return f"the API key may not upload the {what} (403 Forbidden): give its team {need}"
        if status == 404:
            if path.startswith("/api/v1/event/token"):
                return f"Dependency-Track does not know the token ({path}): is it older than 4.11?"
            who = body or {}
            name = who.get("project") or f"{who.get('projectName')} {who.get('projectVersion')}"
            parent = who.get("parentUUID") or " ".join(
                str(who[k]) for k in ("parentName", "parentVersion") if who.get(k)
            )
            hint = "create it in Dependency-Track or pass --auto-create"
            if parent:
                hint += f" (and check the parent {parent} exists)"
            return f"project {name} not found (404): {hint}" + (f"; server says: {text}" if text else "")
        if status == 400:
            return f"Dependency-Track refused the {what} (400 Bad Request)" + (f": {text}" if text else "")
        if status == 413:
            return f"the {what} is too large for the server (413): raise its request size limit"
        return f"Dependency-Track answered {status} to {path}" + (f": {text}" if text else "")

    # -- the three endpoints
    def upload_bom(self, project: Project, bom: bytes) -> str:
        body = {**project.fields(), "bom": base64.b64encode(bom).decode("ascii")}
        if project.auto_create:
            body["autoCreate"] = True
        if project.parent_uuid:
            body["parentUUID"] = project.parent_uuid
        elif project.parent_name:
            body["parentName"] = project.parent_name
            if project.parent_version:
                body["parentVersion"] = project.parent_version
        return _token(self._request("PUT", "/api/v1/bom", body), "BOM")

    def upload_vex(self, project: Project, vex: bytes) -> str:
        body = {**project.fields(), "vex": base64.b64encode(vex).decode("ascii")}
        return _token(self._request("PUT", "/api/v1/vex", body), "VEX")

    def processing(self, token: str) -> bool:
        answer = self._request("GET", f"/api/v1/event/token/{urllib.parse.quote(token, safe='')}")
        value = answer.get("processing")
        if not isinstance(value, bool):
            raise DTrackError(f"the token endpoint answered {answer!r} without a 'processing' flag")
        return value

    def wait(
        self,
        token: str,
        *,
        timeout: float = 600.0,
        interval: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.processing(token):
            if time.monotonic() >= deadline:
                raise DTrackError(
                    f"Dependency-Track still processes {token} after {timeout:.0f} s; check its log"
                )
            sleep(interval)


def _token(answer: dict[str, Any], what: str) -> str:
    token = answer.get("token")
    if not isinstance(token, str) or not token:
        raise DTrackError(f"the {what} upload was answered without a token: {answer!r}")
    return token


def _detail(raw: bytes) -> str:
    """The useful part of an error body (RFC 9457 problem details, or a short text)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:300]
    if isinstance(doc, dict):
        parts = [str(doc[k]) for k in ("title", "detail") if doc.get(k)]
        errors = doc.get("errors")
        if isinstance(errors, list):
            parts += [str(e) for e in errors[:5]]
        return "; ".join(parts)[:500]
    return str(doc)[:300]


def _read(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except OSError:
        raise DTrackError(f"{path} is missing: run `cra-fw scan IMAGE -o {path.parent}` first") from None
    if size > MAX_UPLOAD:
        raise DTrackError(f"{path} is {size} bytes, more than the {MAX_UPLOAD} cra-fw uploads")
    data = path.read_bytes()
    try:
        doc = json.loads(data)
    except ValueError:
        raise DTrackError(f"{path} is not JSON: not a CycloneDX {what} written by cra-fw") from None
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        raise DTrackError(f"{path} is not a CycloneDX {what}")
    return data


def upload(
    outdir: Path,
    client: Client,
    project: Project,
    *,
    vex: bool = True,
    wait: bool = False,
    timeout: float = 600.0,
    log: Callable[[str], None] = lambda _m: None,
) -> UploadResult:
    """Upload ``outdir/sbom.cdx.json`` (and ``vex.cdx.json`` when present and ``vex``)."""
    outdir = Path(outdir)
    bom = _read(outdir / SBOM_NAME, "SBOM")
    vex_path = outdir / VEX_NAME
    vex_data = _read(vex_path, "VEX") if vex and vex_path.is_file() else None
    result = UploadResult()
    result.bom_token = client.upload_bom(project, bom)
    log(f"SBOM uploaded to {project.label()} (token {result.bom_token})")
    if wait or vex_data is not None:  # the VEX applies to the BOM's findings: let it land first
        client.wait(result.bom_token, timeout=timeout)
        result.processed.append(result.bom_token)
        log("SBOM processed")
    if vex_data is not None:
        result.vex_token = client.upload_vex(project, vex_data)
        log(f"VEX uploaded (token {result.vex_token})")
        if wait:
            client.wait(result.vex_token, timeout=timeout)
            result.processed.append(result.vex_token)
            log("VEX processed")
    return result
