"""Merging rules on hand-placed detections (real version strings, synthetic placement)."""

from __future__ import annotations

from cra_fw.context import ScanContext
from cra_fw.identify.merge import build_components
from cra_fw.identify.pkgdb import PackageRecord
from cra_fw.identify.records import Detection, Hit
from cra_fw.identify.signatures import default_signatures
from cra_fw.records import ElfInfo, FileEntry, FileKind, ImageInfo

SIGS = default_signatures()


def _ctx(*paths: str) -> ScanContext:
    files = [FileEntry("L1", p, FileKind.ELF, 10, 0o755, sha256="a" * 64,
                       elf=ElfInfo("arm", 32, "little", "DYN", False)) for p in paths]
    return ScanContext(ImageInfo("x", 0, "", "", ""), [], files)


def _det(name: str, version: str, path: str, method: str = "signature") -> Detection:
    return Detection(Hit(name, version, method, 0.9, ""), "L1", path, "a" * 64, "b" * 128)


def test_two_strings_of_one_release_are_one_component_with_the_longer_version():
    # OpenSSH's sshd carries both "OpenSSH_9.2" and "OpenSSH_9.2p1"
    comps = build_components(_ctx("/usr/sbin/sshd"), SIGS,
                             [_det("openssh", "9.2", "/usr/sbin/sshd"), _det("openssh", "9.2p1", "/usr/sbin/sshd")], [])
    assert [(c.name, c.version) for c in comps] == [("openssh", "9.2p1")]


def test_two_real_versions_stay_two_components():
    comps = build_components(_ctx("/usr/lib/libcrypto.so.1.1", "/usr/sbin/app"), SIGS,
                             [_det("openssl", "1.1.1w", "/usr/lib/libcrypto.so.1.1"),
                              _det("openssl", "3.0.20", "/usr/sbin/app")], [])
    assert [(c.name, c.version) for c in comps] == [("openssl", "1.1.1w"), ("openssl", "3.0.20")]
    assert comps[1].files == ("L1:/usr/sbin/app",)


def test_package_owning_the_file_takes_the_signature_name_and_keeps_its_release():
    rec = PackageRecord("libc", "0.9.33.2-1", "opkg", "L1", "/usr/lib/opkg/status",
                        files=("/lib/libuClibc-0.9.33.2.so",))
    snap = PackageRecord("wpad-mini", "2016-06-15-2", "opkg", "L1", "/usr/lib/opkg/status", files=("/usr/sbin/wpad",))
    comps = build_components(_ctx("/lib/libuClibc-0.9.33.2.so", "/usr/sbin/wpad"), SIGS,
                             [_det("uclibc-ng", "0.9.33.2", "/lib/libuClibc-0.9.33.2.so", "filename"),
                              _det("hostapd", "2.6-devel", "/usr/sbin/wpad")], [rec, snap])
    got = {(c.name, c.version): {e.method for e in c.evidence} for c in comps}
    assert got == {("uclibc-ng", "0.9.33.2"): {"package-db", "filename"},
                   ("hostapd", "2.6-devel"): {"package-db", "signature"}}
    hostapd = next(c for c in comps if c.name == "hostapd")
    assert hostapd.cpe == "cpe:2.3:a:w1.fi:hostapd:2.6-devel:*:*:*:*:*:*:*"


def test_versionless_soname_hint_joins_the_versioned_component():
    comps = build_components(_ctx("/lib/libz.so.1.2.13", "/lib/libz.so.1"), SIGS,
                             [_det("zlib", "1.2.13", "/lib/libz.so.1.2.13"),
                              _det("zlib", "", "/lib/libz.so.1", "soname")], [])
    assert [(c.name, c.version) for c in comps] == [("zlib", "1.2.13")]
