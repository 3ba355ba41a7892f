"""A real router firmware tree (EMUX DV-MIPSEL, OpenWrt-based, from shared/firmware)."""

from __future__ import annotations

from pathlib import Path

from cra_fw.checks import run

from .conftest import tree_context


def test_emux_router_rootfs(emux_rootfs):
    root = emux_rootfs / "rootfs-mipsel"
    result = run(tree_context(root), only=("credentials", "secrets", "services"))
    got = sorted((f.rule_id, f.location.path, f.location.line) for f in result.findings)
    assert got == sorted(
        [
            ("credentials.empty-password", "/etc/shadow", 1),  # root::0:0:99999:7:::
            ("services.shell-no-login", "/etc/inittab", 3),  # tts/0::askfirst:/bin/ash --login
            ("services.shell-no-login", "/etc/inittab", 4),  # ttyS0
            ("services.shell-no-login", "/etc/inittab", 5),  # ttyS1
            ("services.shell-no-login", "/etc/inittab", 6),  # ttyS2
            ("services.shell-no-login", "/etc/inittab", 7),  # tty1
            ("services.ssh-root-password", "/etc/config/dropbear", 1),  # PasswordAuth + RootPasswordAuth on
        ]
    )
    # its dropbear host key file is empty (generated on first boot): nothing to report there
    ssh = next(s for s in result.services if s.name == "ssh")
    assert (ssh.binary, ssh.port, ssh.started_by, ssh.config) == (
        "/usr/sbin/dropbear",
        22,
        "procd:/etc/init.d/dropbear:71",
        "/etc/config/dropbear",
    )


def test_emux_hardening_summary(emux_rootfs):
    result = run(tree_context(emux_rootfs / "rootfs-mipsel"), only=("hardening",))
    (summary,) = result.hardening_summary
    assert (summary.arch, summary.bits, summary.endian) == ("mips", 32, "little")
    assert summary.total == len(result.hardening) == 52
    # 2015-era OpenWrt/uClibc MIPS: no NX, no canaries, no RELRO on most binaries
    assert summary.nx == 0 and summary.canary == 0 and summary.exec_stack == 52
    # only the uClibc dynamic loader is linked with GNU_RELRO + BIND_NOW (readelf -ld agrees)
    assert summary.relro_full == 1
    full = [h.path for h in result.hardening if h.relro == "full"]
    assert full == ["/lib/ld-uClibc-0.9.33.2.so"]


# ---- big-endian MIPS: OpenWrt 12.09-era TP-Link WR841N v8 (shared/firmware), sstrip'ped binaries ----

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

from cra_fw.checks.hardening import verdicts  # noqa: E402
from cra_fw.records import FileKind  # noqa: E402

from .conftest import SHARED_FIRMWARE  # noqa: E402

WR841 = SHARED_FIRMWARE / "wifirush" / "openwrt-ar71xx-generic-tl-wr841n-v8-squashfs-sysupgrade.bin"


@pytest.fixture(scope="module")
def wr841_ctx(tmp_path_factory):
    if not WR841.exists() or shutil.which("unsquashfs") is None:
        pytest.skip("shared firmware or unsquashfs missing")
    data = WR841.read_bytes()
    start = data.find(b"hsqs")  # the rootfs squashfs after the TP-Link header and kernel
    tmp = tmp_path_factory.mktemp("wr841")
    (tmp / "root.sqfs").write_bytes(data[start:])
    subprocess.run(
        ["unsquashfs", "-no-xattrs", "-q", "-d", str(tmp / "root"), str(tmp / "root.sqfs")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return tree_context(tmp / "root")


def _mips_be(wr841_ctx):
    out = []
    for e in wr841_ctx.iter_files(kinds=[FileKind.ELF]):
        v = verdicts(e.path, (), e.elf) if e.elf else None
        if v is not None:
            out.append((e, v))
    return out


def test_mips_big_endian_agrees_with_checksec_tools(wr841_ctx):
    cs_mod = pytest.importorskip("checksec.elf", reason="checksec.py not installed")
    os.environ.setdefault("PWNLIB_NOTERM", "1")
    pw_mod = pytest.importorskip("pwnlib.elf.elf", reason="pwntools not installed")
    elves = _mips_be(wr841_ctx)
    assert len(elves) >= 50 and all((v.arch, v.endian) == ("mips", "big") for _, v in elves)
    for e, ours in elves:
        cs = cs_mod.ELFSecurity(Path(e.abs_path)).checksec_state
        program = ours.pie != "dso" and ".so" not in e.name
        assert ours.nx is cs.nx, e.path
        if program:
            pw = pw_mod.ELF(e.abs_path, checksec=False)
            assert ours.exec_stack is pw.execstack, e.path
            assert (ours.pie == "yes") is (cs.pie.name == "PIE") is pw.pie, e.path
            assert (ours.canary == "yes") is cs.canary is pw.canary, e.path


def test_mips_big_endian_relro_without_section_headers(wr841_ctx):
    cs_mod = pytest.importorskip("checksec.elf", reason="checksec.py not installed")
    for e, ours in _mips_be(wr841_ctx):
        cs = cs_mod.ELFSecurity(Path(e.abs_path)).checksec_state
        assert ours.relro == {"No": "none", "Partial": "partial", "Full": "full"}[cs.relro.name], e.path


def test_openwrt_1209_router_findings(wr841_ctx):
    result = run(wr841_ctx, only=("credentials", "secrets", "services"))
    got = sorted((f.rule_id, f.location.path, f.location.line) for f in result.findings)
    assert got == sorted(
        [
            ("services.http-admin", "/etc/config/uhttpd", 5),  # list listen_http 0.0.0.0:80
            ("services.ssh-root-password", "/etc/config/dropbear", 1),
            # OpenWrt 12.09 starts telnetd while root has no password (shadow field 'x')
            ("services.telnet", "/etc/init.d/telnet", 31),
            # CoovaChilli's shipped RADIUS/UAM secrets (HS_RADSECRET=testing123, HS_UAMSECRET=change-me,
            # HS_RADSECRET=coova-anonymous) and WiFi Mesh's first-boot root password
            # (echo -e "w1f1m35h\nw1f1m35h" | passwd root, in the init script and the script it copies)
            # root 'x' is "unset" on OpenWrt 12.09: telnetd's /bin/login.sh gives a root shell
            ("credentials.empty-password", "/etc/shadow", 1),
            ("credentials.plaintext", "/etc/chilli/defaults", 38),
            ("credentials.plaintext", "/etc/chilli/defaults", 39),
            ("credentials.plaintext", "/etc/chilli/gui-config-default.ini", 11),
            ("credentials.plaintext", "/etc/init.d/wifimesh", 95),
            # ... and writes the vendor's ssh-rsa key to /etc/dropbear/authorized_keys (line 92 of both)
            ("credentials.plaintext", "/etc/init.d/wifimesh", 92),
            ("credentials.plaintext", "/sbin/wifimesh/startup.sh", 92),
            ("credentials.plaintext", "/sbin/wifimesh/startup.sh", 95),
        ]
    )  # and nothing from the chilli captive-portal JavaScript (password = obj.field; str2hex(...))
