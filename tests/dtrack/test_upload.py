"""`cra-fw dtrack upload` against a local server that implements Dependency-Track's documented API."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cra_fw.cli import main
from cra_fw.dtrack import Client, DTrackError, Project, upload
from cra_fw.report import cyclonedx
from cra_fw.vulns import vex

from ..evidence.sample import sample_report
from .server import DTrackServer

KEY = "odt_0123456789abcdefghijklmnopqrstuv"


@pytest.fixture()
def outdir(tmp_path: Path) -> Path:
    """The SBOM and VEX of a scan, from cra-fw's real writers."""
    out = tmp_path / "out"
    report = sample_report()
    cyclonedx.write(report, out)
    assert vex.write(report, out) is not None
    return out


@pytest.fixture()
def server():
    with DTrackServer(api_key=KEY) as srv:
        yield srv


def run(args: list[str], key: str | None = KEY):
    env = {"DT_KEY": key} if key is not None else {}
    return CliRunner().invoke(main, ["dtrack", "upload", *args], env=env)


def test_upload_sends_schema_valid_sbom_and_vex_with_the_project_fields(outdir, server) -> None:
    server.state.projects[("Gateways", "")] = "5b3f9c2e-1111-4222-8333-944445555666"
    res = run(
        [
            str(outdir),
            "--url",
            server.url,
            "--api-key-env",
            "DT_KEY",
            "--project",
            "router-fw",
            "--version",
            "2.4.1",
            "--parent",
            "Gateways",
            "--auto-create",
            "--wait",
        ]
    )
    assert res.exit_code == 0, res.output
    puts = [r for r in server.state.received if r["method"] == "PUT"]
    assert [r["path"] for r in puts] == ["/api/v1/bom", "/api/v1/vex"]
    bom, vex_req = puts
    assert bom["headers"]["X-Api-Key"] == KEY and bom["headers"]["Content-Type"] == "application/json"
    assert {k: v for k, v in bom["body"].items() if k != "bom"} == {
        "projectName": "router-fw",
        "projectVersion": "2.4.1",
        "autoCreate": True,
        "parentName": "Gateways",
    }
    # byte for byte what the scan wrote, and the server's schema check passed
    assert base64.b64decode(bom["body"]["bom"]) == (outdir / "sbom.cdx.json").read_bytes()
    assert base64.b64decode(vex_req["body"]["vex"]) == (outdir / "vex.cdx.json").read_bytes()
    assert {k: v for k, v in vex_req["body"].items() if k != "vex"} == {
        "projectName": "router-fw",
        "projectVersion": "2.4.1",
    }
    assert bom["document"]["bomFormat"] == "CycloneDX" and vex_req["document"]["vulnerabilities"]
    # the project was created below its parent, and both tokens were polled until done
    created = server.state.projects[("router-fw", "2.4.1")]
    assert server.state.parents[created] == "5b3f9c2e-1111-4222-8333-944445555666"
    polled = [r["path"].rsplit("/", 1)[1] for r in server.state.received if r["method"] == "GET"]
    assert polled.count(bom["token"]) == 2 and polled.count(vex_req["token"]) == 2
    # the VEX went out only after the BOM was processed
    order = [(r["method"], r.get("token") or r["path"].rsplit("/", 1)[1]) for r in server.state.received]
    assert order.index(("PUT", vex_req["token"])) > max(
        i for i, o in enumerate(order) if o == ("GET", bom["token"])
    )
    assert "SBOM uploaded to router-fw 2.4.1" in res.output and "VEX processed" in res.output


def test_existing_project_by_uuid_without_vex(outdir, server) -> None:
    server.state.projects[("router-fw", "2.4.1")] = "0d7c2c54-7f3a-4a5e-9d36-1f1e2d3c4b5a"
    res = run(
        [
            str(outdir),
            "--url",
            server.url + "/api/",
            "--api-key-env",
            "DT_KEY",
            "--project-uuid",
            "0d7c2c54-7f3a-4a5e-9d36-1f1e2d3c4b5a",
            "--no-vex",
        ]
    )
    assert res.exit_code == 0, res.output
    puts = [r for r in server.state.received if r["method"] == "PUT"]
    assert len(puts) == 1 and puts[0]["body"]["project"] == "0d7c2c54-7f3a-4a5e-9d36-1f1e2d3c4b5a"
    assert "autoCreate" not in puts[0]["body"] and "projectName" not in puts[0]["body"]
    assert not [r for r in server.state.received if r["method"] == "GET"]  # no --wait, no VEX: no polling


@pytest.mark.parametrize(
    ("setup", "args", "key", "message"),
    [
        (None, [], "wrong-key", "refused the API key (401"),
        (
            None,
            [],
            KEY,
            "project router-fw 2.4.1 not found (404): create it in Dependency-Track or pass --auto-create",
        ),
        ("no-create", ["--auto-create"], KEY, "PROJECT_CREATION_UPLOAD"),
        (
            None,
            ["--auto-create", "--parent", "NoSuchParent@1"],
            KEY,
            "check the parent NoSuchParent 1 exists",
        ),
    ],
    ids=["auth", "project-not-found", "no-permission", "parent-not-found"],
)
def test_refusals_are_clear_errors(outdir, server, setup, args, key, message) -> None:
    if setup == "no-create":
        server.state.may_create = False
    res = run(
        [
            str(outdir),
            "--url",
            server.url,
            "--api-key-env",
            "DT_KEY",
            "--project",
            "router-fw",
            "--version",
            "2.4.1",
            *args,
        ],
        key=key,
    )
    assert res.exit_code == 1
    assert message in res.output and "Traceback" not in res.output


def test_server_down_is_a_clear_error(outdir) -> None:
    with DTrackServer() as srv:
        url = srv.url
    res = run([str(outdir), "--url", url, "--api-key-env", "DT_KEY", "--project", "p", "--version", "1"])
    assert res.exit_code == 1
    assert f"cannot reach Dependency-Track at {url}" in res.output


def test_schema_invalid_sbom_is_refused_by_the_server(outdir, server) -> None:
    doc = json.loads((outdir / "sbom.cdx.json").read_text())
    doc["components"][0]["type"] = "not-a-type"
    (outdir / "sbom.cdx.json").write_text(json.dumps(doc))
    server.state.projects[("p", "1")] = "0d7c2c54-7f3a-4a5e-9d36-1f1e2d3c4b5a"
    with pytest.raises(
        DTrackError, match=r"refused the BOM \(400 Bad Request\): The uploaded BOM is invalid"
    ):
        upload(outdir, Client(server.url, KEY), Project("p", "1"), vex=False)


def test_usage_errors(outdir, server, tmp_path) -> None:
    res = run(
        [str(outdir), "--url", server.url, "--api-key-env", "DT_KEY", "--project", "p", "--version", "1"],
        key=None,
    )
    assert res.exit_code == 2 and "DT_KEY: that environment variable is not set" in res.output
    res = run([str(outdir), "--url", server.url, "--api-key-env", "DT_KEY", "--project", "p"])
    assert res.exit_code == 2 and "--version" in res.output
    res = run(
        [
            str(tmp_path / "empty"),
            "--url",
            server.url,
            "--api-key-env",
            "DT_KEY",
            "--project",
            "p",
            "--version",
            "1",
        ]
    )
    assert res.exit_code == 1 and "sbom.cdx.json is missing" in res.output
    res = run(
        [str(outdir), "--url", "ftp://x", "--api-key-env", "DT_KEY", "--project", "p", "--version", "1"]
    )
    assert res.exit_code == 1 and "not an http(s) URL" in res.output
    assert not server.state.received


def test_wait_gives_up_after_the_timeout(outdir, server) -> None:
    server.state.projects[("p", "1")] = "0d7c2c54-7f3a-4a5e-9d36-1f1e2d3c4b5a"
    client = Client(server.url, KEY)
    token = client.upload_bom(Project("p", "1"), (outdir / "sbom.cdx.json").read_bytes())
    server.state.polls[token] = 10**6
    with pytest.raises(DTrackError, match="still processes"):
        client.wait(token, timeout=0.0, sleep=lambda _s: None)
