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
    files = [
        FileEntry(
            "L1", p, FileKind.ELF, 10, 0o755, sha256="a" * 64, elf=ElfInfo("arm", 32, "little", "DYN", False)
        )
        for p in paths
    ]
    return ScanContext(ImageInfo("x", 0, "", "", ""), [], files)


def _det(name: str, version: str, path: str, method: str = "signature") -> Detection:
    return Detection(Hit(name, version, method, 0.9, ""), "L1", path, "a" * 64, "b" * 128)


def test_two_strings_of_one_release_are_one_component_with_the_longer_version():
    # OpenSSH's sshd carries both "OpenSSH_9.2" and "OpenSSH_9.2p1"
    comps = build_components(
        _ctx("/usr/sbin/sshd"),
        SIGS,
        [_det("openssh", "9.2", "/usr/sbin/sshd"), _det("openssh", "9.2p1", "/usr/sbin/sshd")],
        [],
    )
    assert [(c.name, c.version) for c in comps] == [("openssh", "9.2p1")]


def test_two_real_versions_stay_two_components():
    comps = build_components(
        _ctx("/usr/lib/libcrypto.so.1.1", "/usr/sbin/app"),
        SIGS,
        [_det("openssl", "1.1.1w", "/usr/lib/libcrypto.so.1.1"), _det("openssl", "3.0.20", "/usr/sbin/app")],
        [],
    )
    assert [(c.name, c.version) for c in comps] == [("openssl", "1.1.1w"), ("openssl", "3.0.20")]
    assert comps[1].files == ("L1:/usr/sbin/app",)


def test_package_owning_the_file_takes_the_signature_name_and_keeps_its_release():
    rec = PackageRecord(
        "libc", "0.9.33.2-1", "opkg", "L1", "/usr/lib/opkg/status", files=("/lib/libuClibc-0.9.33.2.so",)
    )
    snap = PackageRecord(
        "wpad-mini", "2016-06-15-2", "opkg", "L1", "/usr/lib/opkg/status", files=("/usr/sbin/wpad",)
    )
    comps = build_components(
        _ctx("/lib/libuClibc-0.9.33.2.so", "/usr/sbin/wpad"),
        SIGS,
        [
            _det("uclibc", "0.9.33.2", "/lib/libuClibc-0.9.33.2.so", "filename"),
            _det("hostapd", "2.6-devel", "/usr/sbin/wpad"),
        ],
        [rec, snap],
    )
    got = {(c.name, c.version): {e.method for e in c.evidence} for c in comps}
    assert got == {
        ("uclibc", "0.9.33.2"): {"package-db", "filename"},
        ("hostapd", "2.6-devel"): {"package-db", "signature"},
    }
    hostapd = next(c for c in comps if c.name == "hostapd")
    assert hostapd.cpe == "cpe:2.3:a:w1.fi:hostapd:2.6-devel:*:*:*:*:*:*:*"


def test_versionless_soname_hint_joins_the_versioned_component():
    comps = build_components(
        _ctx("/lib/libz.so.1.2.13", "/lib/libz.so.1"),
        SIGS,
        [_det("zlib", "1.2.13", "/lib/libz.so.1.2.13"), _det("zlib", "", "/lib/libz.so.1", "soname")],
        [],
    )
    assert [(c.name, c.version) for c in comps] == [("zlib", "1.2.13")]


def test_packages_of_one_source_build_follow_the_binary_release_and_symlinks_count():
    # OpenWrt 12.09 (librarybox image): hostapd-mini lists /usr/sbin/hostapd, a link to wpad-mini's
    # /usr/sbin/wpad; both packages are 20131120-1 and Source: package/hostapd
    ctx = _ctx("/usr/sbin/wpad")
    ctx.files.append(FileEntry("L1", "/usr/sbin/hostapd", FileKind.SYMLINK, 0, 0o777, link_target="wpad"))
    ctx.__post_init__()
    wpad = PackageRecord(
        "wpad-mini",
        "20131120-1",
        "opkg",
        "L1",
        "/usr/lib/opkg/status",
        source="package/hostapd",
        files=("/usr/sbin/wpad",),
    )
    mini = PackageRecord(
        "hostapd-mini",
        "20131120-1",
        "opkg",
        "L1",
        "/usr/lib/opkg/status",
        source="package/hostapd",
        files=("/usr/sbin/hostapd",),
    )
    fw = PackageRecord(
        "firewall", "2013-06-29", "opkg", "L1", "/usr/lib/opkg/status", source="package/firewall"
    )
    ipt = PackageRecord(
        "libip4tc", "1.4.10-5", "opkg", "L1", "/usr/lib/opkg/status", source="package/iptables"
    )
    comps = build_components(
        ctx, SIGS, [_det("hostapd", "2.1-devel", "/usr/sbin/wpad")], [wpad, mini, fw, ipt]
    )
    assert [(c.name, c.version) for c in comps] == [
        ("firewall", "2013-06-29"),
        ("hostapd", "2.1-devel"),
        ("iptables", "1.4.10"),
    ]
    assert next(c for c in comps if c.name == "hostapd").files == ("L1:/usr/sbin/wpad",)
