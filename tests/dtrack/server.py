"""A local HTTP server with only the Dependency-Track endpoints cra-fw uses, checking what it gets.

It implements ``PUT /api/v1/bom``, ``PUT /api/v1/vex`` and ``GET /api/v1/event/token/{uuid}``
as Dependency-Track's REST API documents them, and refuses what a real server would: a missing
or wrong ``X-Api-Key`` (401), a key without permission (403), an unknown project without
``autoCreate`` (404), a body that is not JSON, not valid base64 or not a schema-valid CycloneDX
1.6 document (400).  It records every request so tests can look at exactly what arrived.
It is checked against the documented API, not against a live Dependency-Track.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


@dataclass
class State:
    api_key: str
    may_create: bool = True
    projects: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, version) -> uuid
    parents: dict[str, str] = field(default_factory=dict)  # project uuid -> parent uuid
    received: list[dict[str, Any]] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)  # token -> polls left while "processing"
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _send(
            self, status: int, body: dict[str, Any] | None = None, ctype: str = "application/json"
        ) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _problem(self, status: int, title: str, detail: str) -> None:
            self._send(
                status, {"status": status, "title": title, "detail": detail}, "application/problem+json"
            )

        def _auth(self) -> bool:
            key = self.headers.get("X-Api-Key")
            if key != state.api_key:
                self._send(401)
                return False
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if not self._auth():
                return
            prefix = "/api/v1/event/token/"
            if not self.path.startswith(prefix):
                self._send(404)
                return
            token = self.path[len(prefix) :]
            with state.lock:
                state.received.append({"method": "GET", "path": self.path})
                left = state.polls.get(token)
                if left is None:
                    self._send(200, {"processing": False})  # DT answers false for unknown tokens
                    return
                state.polls[token] = max(0, left - 1)
            self._send(200, {"processing": left > 0})

        def do_PUT(self) -> None:  # noqa: N802
            if not self._auth():
                return
            if self.path not in ("/api/v1/bom", "/api/v1/vex"):
                self._send(405)
                return
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                self._problem(415, "Unsupported Media Type", "PUT takes application/json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._problem(400, "Bad Request", "body is not JSON")
                return
            field_name = "bom" if self.path.endswith("/bom") else "vex"
            try:
                doc_bytes = base64.b64decode(body.get(field_name, ""), validate=True)
                doc_text = doc_bytes.decode("utf-8")
                json.loads(doc_text)
            except (binascii.Error, ValueError, UnicodeDecodeError, AttributeError):
                self._problem(400, "Invalid BOM", f"'{field_name}' is not base64 of a JSON document")
                return
            error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(doc_text)
            if error is not None:
                self._problem(400, "The uploaded BOM is invalid", str(error)[:300])
                return
            with state.lock:
                project = self._project(body, field_name)
                if project is None:
                    return
                token = str(uuid.uuid4())
                state.polls[token] = 1  # "processing" on the first poll, done on the second
                state.received.append(
                    {
                        "method": "PUT",
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                        "document": json.loads(doc_text),
                        "project_uuid": project,
                        "token": token,
                    }
                )
            self._send(200, {"token": token})

        def _project(self, body: dict[str, Any], kind: str) -> str | None:
            if body.get("project"):
                if body["project"] not in state.projects.values():
                    self._send(404)
                    return None
                return str(body["project"])
            key = (body.get("projectName"), body.get("projectVersion"))
            if not all(isinstance(k, str) and k for k in key):
                self._problem(400, "Bad Request", "project or projectName and projectVersion are required")
                return None
            found = state.projects.get(key)  # type: ignore[arg-type]
            if found is not None:
                return found
            if kind == "vex" or not body.get("autoCreate"):
                self._send(404)
                return None
            if not state.may_create:
                self._send(403)
                return None
            parent = None
            if body.get("parentUUID"):
                parent = body["parentUUID"] if body["parentUUID"] in state.projects.values() else ""
            elif body.get("parentName"):
                parent = state.projects.get((body["parentName"], body.get("parentVersion") or ""), "")
            if parent == "":
                self._send(404)  # DT: the parent project could not be found
                return None
            new = str(uuid.uuid4())
            state.projects[key] = new  # type: ignore[index]
            if parent:
                state.parents[new] = parent
            return new

    return Handler


class DTrackServer:
    """Run the server on 127.0.0.1 on a free port, in a thread (a context manager)."""

    def __init__(self, api_key: str = "odt_test_key") -> None:
        self.state = State(api_key=api_key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DTrackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
