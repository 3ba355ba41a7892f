"""Distribution identity: purls of distro packages, distro banners, and how certain a version is.

A component installed by a distribution's package manager is that distribution's package:
its purl keeps the full package version (epoch, revision) and names the distribution, so the
distribution's own advisories can decide about it (``pkg:deb/debian/libexpat1@2.5.0-1%2Bdeb12u2
?arch=armhf&distro=debian-12&upstream=expat``).  A binary that prints its distro build
(``ld.so (Debian GLIBC 2.36-9+deb12u14)``) says the same without a package database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packageurl import PackageURL

from cra_fw.identify.pkgdb import PackageRecord
from cra_fw.records import ElfInfo, Evidence

# package manager -> purl type (opkg has no registered purl type; "opkg" names the format)
_PURL_TYPE = {"dpkg": "deb", "apk": "apk", "opkg": "opkg"}
_DEFAULT_NAMESPACE = {"dpkg": "debian", "apk": "alpine", "opkg": "openwrt"}

# "GNU C Library (Debian GLIBC 2.36-9+deb12u14)", "ld.so (Ubuntu GLIBC 2.35-0ubuntu3.8)"
_GLIBC_BANNER = re.compile(r"\((?P<distro>Debian|Ubuntu) GLIBC (?P<version>[0-9][0-9A-Za-z.+~:-]*)\)")
# Debian's stable and security updates carry the release number: +deb12u3, ~deb12u1, +deb11u7
_DEB_RELEASE = re.compile(r"[+~]deb(?P<release>\d+)u\d+")

# /lib/modules/6.1.0-57-armmp: Debian and Ubuntu name the kernel's ABI (X.Y.0-N), not its release
# (Debian's 6.1.0-57 is 6.1.192): from the folder name alone the kernel is only "at least X.Y.0"
_DISTRO_KERNEL_ABI = re.compile(r"/lib/modules/\d+\.\d+\.0-\d+[-+]")
VERSION_EXACT = "exact"
VERSION_LOWER_BOUND = "lower-bound"
VERSION_RANGE = "range"
VERSION_UNKNOWN = "unknown"


def _namespace(rec: PackageRecord) -> str:
    distro_id = rec.distro.rsplit("-", 1)[0] if "-" in rec.distro else rec.distro
    if rec.manager == "dpkg" and distro_id in ("debian", "ubuntu", "raspbian", "devuan"):
        return distro_id
    if rec.manager == "apk" and distro_id in ("alpine", "wolfi", "chainguard", "postmarketos"):
        return distro_id
    if rec.manager == "opkg" and distro_id:
        return distro_id  # openwrt, lede, poky (Yocto with ipk packages), ...
    return _DEFAULT_NAMESPACE.get(rec.manager, "")


def package_purl(rec: PackageRecord) -> str:
    """The distro purl of an installed package; "" for a manager without one."""
    ptype = _PURL_TYPE.get(rec.manager)
    if ptype is None or not rec.name or not rec.version:
        return ""
    qualifiers: dict[str, str] = {}
    if rec.arch:
        qualifiers["arch"] = rec.arch
    if rec.distro:
        qualifiers["distro"] = rec.distro
    source = rec.source.rstrip("/").rsplit("/", 1)[-1] if rec.manager == "opkg" else rec.source
    if source and source != rec.name:
        # the source package names the code: distro advisories are filed under it
        qualifiers["upstream"] = f"{source}@{rec.source_version}" if rec.source_version else source
    return PackageURL(ptype, _namespace(rec), rec.name, rec.version, qualifiers or None).to_string()


def banner_distro(evidence: Iterable[Evidence]) -> tuple[str, str] | None:
    """(distribution, package version) when a detection's text names a distro build."""
    for ev in evidence:
        m = _GLIBC_BANNER.search(ev.detail)
        if m:
            return m.group("distro").lower(), m.group("version")
    return None


def debian_release(version: str) -> str:
    """The Debian release a stable/security revision was built for ("2.36-9+deb12u14" -> "12")."""
    m = _DEB_RELEASE.search(version)
    return m.group("release") if m else ""


def deb_arch(elf: ElfInfo | None, path: str = "") -> str:
    """Debian's architecture name for an ELF file ("" when it cannot be told)."""
    if elf is None:
        return ""
    if elf.arch == "arm":
        hard = "armhf" in elf.interpreter or "gnueabihf" in path or path.endswith("ld-linux-armhf.so.3")
        return "armhf" if hard else "armel"
    table = {
        ("x86_64", 64): "amd64",
        ("x86", 32): "i386",
        ("aarch64", 64): "arm64",
        ("powerpc64", 64): "ppc64el" if elf.endian == "little" else "ppc64",
        ("riscv", 64): "riscv64",
        ("s390x", 64): "s390x",
        ("mips", 32): "mipsel" if elf.endian == "little" else "mips",
        ("mips", 64): "mips64el" if elf.endian == "little" else "mips64",
    }
    return table.get((elf.arch, elf.bits), "")


def banner_purl(name: str, distro: str, version: str, arch: str, distro_release: str) -> str:
    """The distro purl of a component known from a distro banner (no package database)."""
    release = distro_release or (debian_release(version) if distro == "debian" else "")
    qualifiers = {}
    if arch:
        qualifiers["arch"] = arch
    if release:
        qualifiers["distro"] = f"{distro}-{release}"
    return PackageURL("deb", distro, name, version, qualifiers or None).to_string()


def version_certainty(version: str, evidence: Iterable[Evidence]) -> tuple[str, str]:
    """(certainty, vers range) of a component's version from how it was found.

    Only "symbol" evidence (feature markers of a statically linked library) says no more than
    "at least this release": the marker of a newer release may simply not be linked in; nor does
    a distribution's kernel ABI folder (``/lib/modules/6.1.0-57-armmp``).  Any other method that
    names a version (package database, banner, signature, file name) is exact.
    """
    if not version:
        return VERSION_UNKNOWN, ""
    evidence = list(evidence)
    methods = {ev.method for ev in evidence}
    if methods and methods <= {"symbol", "soname"} and "symbol" in methods:
        return VERSION_LOWER_BOUND, f"vers:generic/>={version}"
    if evidence and all(ev.method == "filename" and _DISTRO_KERNEL_ABI.search(ev.detail) for ev in evidence):
        return VERSION_LOWER_BOUND, f"vers:generic/>={version}"
    return VERSION_EXACT, ""
