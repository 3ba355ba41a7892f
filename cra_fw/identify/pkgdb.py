"""Package databases and distribution markers: dpkg, opkg, apk, os-release, OpenWrt, Buildroot, Yocto.

Each reader returns :class:`PackageRecord` items; ``merge`` maps them to components
(a package named in a signature's ``packages`` list becomes that component).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cra_fw.records import FileEntry

MAX_DB_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class PackageRecord:
    """One installed package (or a distribution marker) read from the image."""

    name: str
    version: str  # as the package manager writes it (epoch, revision included)
    manager: str  # dpkg, opkg, apk, os-release, openwrt, buildroot, yocto
    layer_id: str
    db_path: str  # the file it was read from
    arch: str = ""
    source: str = ""
    source_version: str = ""  # dpkg "Source: name (version)": the code's version when it differs
    license: str = ""
    maintainer: str = ""
    files: tuple[str, ...] = ()  # paths the package installed, when the DB lists them
    kind: str = "library"
    distro: str = ""  # e.g. "debian-12", "alpine-3.19.1", "openwrt-18.06.1" for purl qualifiers

    @property
    def upstream_version(self) -> str:
        # a transitional or renamed binary package carries a version of its own (bookworm's "ntp"
        # 1:4.2.8p15+dfsg-2~1.2.2+dfsg1-1 is ntpsec 1.2.2); the source version is the code's
        return upstream_version(self.source_version or self.version, self.manager)


_DFSG = re.compile(r"(?:[+.~](?:dfsg|ds|repack|debian|nmu)[^-]*)$", re.I)


def upstream_version(version: str, manager: str = "dpkg") -> str:
    """Upstream part of a package version: no epoch, no packaging revision, no +dfsg marks."""
    v = version.strip()
    if manager == "apk":
        return re.sub(r"-r\d+$", "", v)  # Alpine: "<upstream>-r<release>"
    if manager not in ("dpkg", "opkg"):
        return v
    if ":" in v and v.split(":", 1)[0].isdigit():
        v = v.split(":", 1)[1]
    if manager == "opkg":
        # OpenWrt: "<upstream>-<release>", the kernel adds "-<vermagic hash>"; a bare snapshot date
        # ("2013-06-29", firewall on Attitude Adjustment) has no release to drop
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            return v
        m = re.match(r"^(.*?)-\d+(?:-[0-9a-f]{32})?$", v)
        return m.group(1) if m else v
    if "-" in v:
        v = v.rsplit("-", 1)[0]
    # Debian's "+really" convention: the version after it is the code actually shipped
    # ("2.12.7+dfsg+really2.9.14" is libxml2 2.9.14 kept above a withdrawn 2.12.7 upload)
    really = re.search(r"[+~.]really([0-9][^+~]*)", v)
    if really:
        v = really.group(1)
    v = _DFSG.sub("", v)
    return v


def parse_control_paragraphs(text: str) -> Iterator[dict[str, str]]:
    """Paragraphs of a Debian-style control file (dpkg status, opkg status/control)."""
    para: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if para:
                yield para
            para, last = {}, ""
            continue
        if line[0] in " \t":
            if last:
                para[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip()
        para[last] = value.strip()
    if para:
        yield para


def _installed(para: dict[str, str]) -> bool:
    status = para.get("Status", "install ok installed")
    return (
        "installed" in status.split()
        and "not-installed" not in status.split()
        and ("deinstall" not in status.split() or "installed" in status.split()[-1:])
    )


def _os_release_values(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            out[key] = value.strip().strip("'\"")
    return out


Reader = Callable[[FileEntry], bytes]


# Where package databases and release markers live, relative to a system root.
_DB_FILES = (
    "/var/lib/dpkg/status",
    "/usr/lib/opkg/status",
    "/var/lib/opkg/status",
    "/lib/apk/db/installed",
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/openwrt_release",
    "/etc/buildroot_version",
    "/etc/br-version",
)
_DB_DIRS = ("/var/lib/dpkg/status.d/", "/usr/lib/opkg/info/", "/var/lib/opkg/info/")
_MAX_ROOT_DEPTH = 2  # "/rootfs" or "/rootfs-mipsel/fs": vendor tarballs wrap the tree in a folder


def split_root(path: str) -> tuple[str, str]:
    """(system root prefix, path inside that root) of a package-database file.

    A layer's files usually start at the system root, but rootfs tarballs often wrap it in
    a folder (``/rootfs-mipsel/usr/lib/opkg/status``).  Other paths come back unchanged.
    """
    for known in _DB_FILES:
        if path.endswith(known):
            root = path[: -len(known)]
            if root.count("/") <= _MAX_ROOT_DEPTH:
                return root, known
    for folder in _DB_DIRS:
        at = path.rfind(folder)
        if at >= 0 and "/" not in path[at + len(folder) :] and path[:at].count("/") <= _MAX_ROOT_DEPTH:
            return path[:at], path[at:]
    return "", path


def read_package_dbs(files: list[FileEntry], read: Reader) -> list[PackageRecord]:
    """All package records found in ``files`` (one inventory), reading through ``read``.

    Paths in the records (the database file, the files a package lists) are as the
    inventory names them, system-root prefix included.
    """
    by_path: dict[tuple[str, str], FileEntry] = {(f.layer_id, f.path): f for f in files}
    out: list[PackageRecord] = []
    distro_by_root: dict[tuple[str, str], str] = {}
    dbs = [(f, *split_root(f.path)) for f in files if f.kind.value not in ("symlink", "directory", "device")]
    for f, root, path in dbs:
        if path in ("/etc/os-release", "/usr/lib/os-release"):
            vals = _os_release_values(read(f)[:65536].decode("utf-8", "replace"))
            osid = vals.get("ID", "").lower()
            if osid and vals.get("VERSION_ID"):
                distro_by_root.setdefault((f.layer_id, root), f"{osid}-{vals['VERSION_ID']}")
        elif path == "/etc/openwrt_release":
            # OpenWrt's own release file names the release its package feeds belong to
            vals = _os_release_values(read(f)[:65536].decode("utf-8", "replace"))
            # (vendors rename DISTRIB_ID; the package feeds stay OpenWrt's)
            release = re.sub(r"\s+", "_", vals.get("DISTRIB_RELEASE", "").strip())
            if release:
                distro_by_root[(f.layer_id, root)] = f"openwrt-{release}"
    for f, root, path in dbs:
        distro = distro_by_root.get((f.layer_id, root), "")
        if path == "/var/lib/dpkg/status" or path.startswith("/var/lib/dpkg/status.d/"):
            out.extend(_dpkg(f, root, read, by_path, distro))
        elif path in ("/usr/lib/opkg/status", "/var/lib/opkg/status"):
            out.extend(_opkg_status(f, root, path, read, by_path, distro=distro))
        elif path.startswith(("/usr/lib/opkg/info/", "/var/lib/opkg/info/")) and path.endswith(".control"):
            out.extend(_opkg_status(f, root, path, read, by_path, control=True, distro=distro))
        elif path == "/lib/apk/db/installed":
            out.extend(_apk_installed(f, root, read, distro))
        elif path in ("/etc/os-release", "/usr/lib/os-release"):
            out.extend(_os_release(f, read))
        elif path == "/etc/openwrt_release":
            out.extend(_openwrt_release(f, read))
        elif path in ("/etc/buildroot_version", "/etc/br-version"):
            v = read(f)[:256].decode("utf-8", "replace").strip().split()
            if v:
                out.append(
                    PackageRecord("buildroot", v[0], "buildroot", f.layer_id, f.path, kind="operating-system")
                )
    return _dedupe(out)


def _dedupe(records: list[PackageRecord]) -> list[PackageRecord]:
    seen: dict[tuple[str, str, str, str], PackageRecord] = {}
    for rec in records:
        key = (rec.layer_id, rec.manager if rec.manager not in ("opkg",) else "opkg", rec.name, rec.version)
        prev = seen.get(key)
        if prev is None:
            seen[key] = rec
            continue
        keep, other = (rec, prev) if rec.files and not prev.files else (prev, rec)
        # OpenWrt's status file lacks Source/License; the package's .control file has them
        gaps = {
            k: getattr(other, k)
            for k in ("source", "license", "maintainer")
            if getattr(other, k) and not getattr(keep, k)
        }
        seen[key] = dataclasses.replace(keep, **gaps) if gaps else keep
    return list(seen.values())


def _dpkg(f: FileEntry, root: str, read: Reader, by_path: dict, distro: str) -> list[PackageRecord]:
    out = []
    for para in parse_control_paragraphs(read(f)[:MAX_DB_BYTES].decode("utf-8", "replace")):
        name, version = para.get("Package", ""), para.get("Version", "")
        if not name or not version or not _installed(para):
            continue
        arch = para.get("Architecture", "")
        listed: tuple[str, ...] = ()
        for cand in (f"/var/lib/dpkg/info/{name}:{arch}.list", f"/var/lib/dpkg/info/{name}.list"):
            lf = by_path.get((f.layer_id, root + cand))
            if lf is not None:
                lines = read(lf)[:MAX_DB_BYTES].decode("utf-8", "replace").splitlines()
                listed = tuple(root + p for p in lines if p.startswith("/") and p != "/.")
                break
        src = re.match(r"\s*(\S*)(?:\s+\(([^()\s]+)\))?", para.get("Source", ""))
        source, source_version = (src.group(1), src.group(2) or "") if src else ("", "")
        out.append(
            PackageRecord(
                name,
                version,
                "dpkg",
                f.layer_id,
                f.path,
                arch=arch,
                source=source,
                source_version=source_version,
                maintainer=para.get("Maintainer", ""),
                files=listed,
                distro=distro,
            )
        )
    return out


def _opkg_status(
    f: FileEntry, root: str, path: str, read: Reader, by_path: dict, control: bool = False, distro: str = ""
) -> list[PackageRecord]:
    out = []
    text = read(f)[:MAX_DB_BYTES].decode("utf-8", "replace")
    base = root + ("/var/lib/opkg/info/" if path.startswith("/var/") else "/usr/lib/opkg/info/")
    for para in parse_control_paragraphs(text):
        name, version = para.get("Package", ""), para.get("Version", "")
        if not name or not version or (not control and not _installed(para)):
            continue
        listed: tuple[str, ...] = ()
        lf = by_path.get((f.layer_id, f"{base}{name}.list"))
        if lf is not None:
            lines = read(lf)[:MAX_DB_BYTES].decode("utf-8", "replace").splitlines()
            # opkg lists "path" or "path\tmode..." per line
            listed = tuple(root + p.split("\t", 1)[0] for p in lines if p.startswith("/"))
        out.append(
            PackageRecord(
                name,
                version,
                "opkg",
                f.layer_id,
                f.path,
                arch=para.get("Architecture", ""),
                source=para.get("Source", ""),
                license=para.get("License", ""),
                maintainer=para.get("Maintainer", ""),
                files=listed,
                distro=distro,
            )
        )
    return out


def _apk_installed(f: FileEntry, root: str, read: Reader, distro: str) -> list[PackageRecord]:
    """Alpine's ``/lib/apk/db/installed``: records of ``X:value`` lines (apk-installed(5))."""
    out = []
    text = read(f)[:MAX_DB_BYTES].decode("utf-8", "replace")
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        files: list[str] = []
        folder = ""
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if not sep or len(key) != 1:
                continue
            if key == "F":
                folder = value.strip("/")
            elif key == "R":
                files.append(f"{root}/{folder}/{value}" if folder else f"{root}/{value}")
            else:
                fields.setdefault(key, value)
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version:
            continue
        out.append(
            PackageRecord(
                name,
                version,
                "apk",
                f.layer_id,
                f.path,
                arch=fields.get("A", ""),
                source=fields.get("o", ""),
                license=fields.get("L", ""),
                maintainer=fields.get("m", ""),
                files=tuple(files),
                distro=distro,
            )
        )
    return out


def _os_release(f: FileEntry, read: Reader) -> list[PackageRecord]:
    vals = _os_release_values(read(f)[:65536].decode("utf-8", "replace"))
    osid = vals.get("ID", "").lower()
    version = vals.get("VERSION_ID") or vals.get("VERSION", "")
    if not osid or not version:
        return []
    manager = {"buildroot": "buildroot", "poky": "yocto"}.get(osid, "os-release")
    if vals.get("ID_LIKE", "").lower() == "poky" or "yocto" in vals.get("NAME", "").lower():
        manager = "yocto"
    return [
        PackageRecord(
            osid,
            version,
            manager,
            f.layer_id,
            f.path,
            kind="operating-system",
            maintainer=vals.get("NAME", ""),
        )
    ]


def _openwrt_release(f: FileEntry, read: Reader) -> list[PackageRecord]:
    vals = _os_release_values(read(f)[:65536].decode("utf-8", "replace"))
    release = vals.get("DISTRIB_RELEASE", "")
    if not release:
        return []
    distro = vals.get("DISTRIB_ID", "OpenWrt").lower() or "openwrt"
    return [
        PackageRecord(
            distro,
            release,
            "openwrt",
            f.layer_id,
            f.path,
            kind="operating-system",
            source=vals.get("DISTRIB_REVISION", ""),
            maintainer=vals.get("DISTRIB_ID", ""),
        )
    ]
