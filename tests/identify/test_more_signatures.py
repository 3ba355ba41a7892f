"""uhttpd, ntp and systemd-udevd signatures on real binaries: one OpenWrt image from shared/firmware scanned
end to end, and what must NOT be listed (busybox's ntpd applet is not ntp, OpenWrt's udevtrigger is not udev)."""

from __future__ import annotations

import pytest

from cra_fw.identify.matcher import Matcher
from cra_fw.identify.signatures import default_signatures

from ..conftest import SHARED_FIRMWARE, scan_cli

OM2P = SHARED_FIRMWARE / "wifirush" / "openwrt-ar71xx-generic-om2p-squashfs-factory.bin"
UHTTPD_PKG_VERSION = "2012-10-30-e57bf6d8bfa465a50eea2c30269acdfe751a46fd"


@pytest.fixture(scope="module")
def om2p_scan(tmp_path_factory):
    if not OM2P.exists():
        pytest.skip("shared firmware missing (../shared/firmware/wifirush)")
    out = tmp_path_factory.mktemp("om2p")
    run = scan_cli(OM2P, out, "--keep-extracted")
    assert run.returncode in (0, 1), run.stderr
    return run


def test_uhttpd_binary_and_opkg_record_are_one_component(om2p_scan):
    comps = [c for c in om2p_scan.report["components"] if c["name"] == "uhttpd"]
    assert len(comps) == 1, comps
    (uhttpd,) = comps
    # the binary records no release: the opkg database gives it, and both are evidence of one component
    assert uhttpd["version"] == UHTTPD_PKG_VERSION
    methods = {(e["method"], e["path"]) for e in uhttpd["evidence"]}
    assert ("symbol", "/usr/sbin/uhttpd") in methods
    assert ("package-db", "/usr/lib/opkg/info/uhttpd.control") in methods
    assert any(f.endswith(":/usr/sbin/uhttpd") for f in uhttpd["files"])


def test_openwrt_lookalikes_are_not_listed(om2p_scan):
    names = {c["name"] for c in om2p_scan.report["components"]}
    # /usr/sbin/ntpd is busybox's applet, /sbin/udevtrigger is OpenWrt's own tool, no web server but uHTTPd
    assert not names & {
        "ntp",
        "ntpsec",
        "udev",
        "systemd",
        "thttpd",
        "boa",
        "goahead",
        "mini-httpd",
        "libressl",
    }


def test_uhttpd_pattern_needs_the_uhttpd_file_name(om2p_scan):
    binaries = list((om2p_scan.outdir / "extracted").rglob("usr/sbin/uhttpd"))
    assert binaries, "uhttpd not extracted"
    data = binaries[0].read_bytes()
    matcher = Matcher(default_signatures())
    assert [(h.name, h.version, h.method) for h in matcher.scan(data, "/usr/sbin/uhttpd")] == [
        ("uhttpd", "", "symbol")
    ]
    # the same bytes under another name: the versionless evidence is not used outside its file globs
    assert [h.name for h in matcher.scan(data, "/usr/bin/other")] == []
