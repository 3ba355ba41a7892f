"""The kind of a file, from its first bytes, its name and its layer."""

from __future__ import annotations

import posixpath

from cra_fw.parsers.magic import HEAD_MAGICS
from cra_fw.records import FileKind, Layer

SCRIPT_EXT = {".sh", ".lua", ".py", ".pl", ".cgi", ".php", ".js", ".rb", ".tcl", ".awk"}
CONFIG_EXT = {
    ".conf",
    ".cfg",
    ".ini",
    ".json",
    ".xml",
    ".yaml",
    ".yml",
    ".toml",
    ".rules",
    ".cnf",
    ".service",
    ".socket",
    ".timer",
    ".network",
    ".properties",
    ".list",
}
CONFIG_NAMES = {
    "passwd",
    "shadow",
    "group",
    "gshadow",
    "inittab",
    "fstab",
    "hosts",
    "hostname",
    "profile",
    "services",
    "protocols",
    "resolv.conf",
    "securetty",
    "shells",
    "openwrt_release",
    "os-release",
    "banner",
    "crontab",
    "htpasswd",
    ".htpasswd",
    "smbpasswd",
    "sudoers",
    "issue",
    "motd",
    "nsswitch.conf",
    "ethers",
}
CERT_EXT = {".crt", ".cer", ".der", ".pem"}
KEY_EXT = {".key", ".p12", ".pfx", ".jks"}
KERNEL_NAMES = ("vmlinux", "vmlinuz", "zimage", "bzimage", "uimage", "image", "kernel")


def _is_text(head: bytes) -> bool:
    sample = head[:4096]
    if not sample:
        return True
    if b"\0" in sample:
        return False
    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start > len(sample) - 4:  # a multi-byte character cut at the sample's end
            return True
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(sample) > 0.9


def _is_kernel(name: str, head: bytes, layer: Layer) -> bool:
    lower = name.lower()
    if len(head) >= 0x40 and head[0x24:0x28] == b"\x18\x28\x6f\x01":  # ARM zImage magic
        return True
    if len(head) >= 0x40 and head[0x38:0x3C] == b"ARM\x64":  # arm64 Image
        return True
    if len(head) >= 0x206 and head[0x202:0x206] == b"HdrS":  # x86 bzImage
        return True
    if layer.format == "uimage" and lower in ("kernel.bin", "kernel_noload.bin"):
        return True
    return lower.startswith(KERNEL_NAMES[:4]) and not _is_text(head)


def classify(path: str, head: bytes, layer: Layer) -> tuple[FileKind, str]:
    """(kind, hint) of a regular file whose first bytes are ``head``."""
    name = posixpath.basename(path)
    ext = posixpath.splitext(name)[1].lower()
    if head.startswith(b"\x7fELF"):
        return FileKind.ELF, "kernel-module" if ext == ".ko" else ""
    if _is_kernel(name, head, layer):
        return FileKind.KERNEL, ""
    if b"-----BEGIN" in head[:8192] and _is_text(head):
        text = head[:65536]
        if b"PRIVATE KEY" in text or b"OPENSSH PRIVATE" in text:
            return FileKind.KEY, "pem"
        if b"CERTIFICATE" in text:
            return FileKind.CERTIFICATE, "pem"
        if b"PUBLIC KEY" in text:
            return FileKind.KEY, "pem-public"
    if ext in CERT_EXT:
        return FileKind.CERTIFICATE, ext[1:]
    if ext in KEY_EXT:
        return FileKind.KEY, ext[1:]
    for offset, magic in HEAD_MAGICS:
        if head[offset : offset + len(magic)] == magic:
            return FileKind.ARCHIVE, magic.hex()
    if _is_text(head):
        if head.startswith(b"#!") or ext in SCRIPT_EXT or "/init.d/" in path or "/rc.d/" in path:
            return FileKind.SCRIPT, head[2:80].split(b"\n", 1)[0].strip().decode(
                "utf-8", "replace"
            ) if head.startswith(b"#!") else ""
        if ext in CONFIG_EXT or name in CONFIG_NAMES or path.startswith("/etc/") or "/etc/" in path:
            return FileKind.CONFIG, ""
        return FileKind.DATA, "text"
    return FileKind.DATA, ""
