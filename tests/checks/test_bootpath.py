"""The boot path: every long-running program init starts, known to the catalog or not.

Trees are written by hand; the unknown vendor daemon is a real ELF (iproute2's ``arpd``,
which detaches with ``daemon()``) copied under a vendor name the catalog cannot know.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from cra_fw.checks.services import Services

from .conftest import tree_context, write_tree

ARPD = Path("/usr/sbin/arpd")
TRUE = Path(shutil.which("true") or "/bin/true")


def _services(root: Path, reads: Counter[str] | None = None) -> dict[tuple[str, str], object]:
    """The services of a tree; ``reads`` counts the reads of each file (by path in the image)."""
    ctx = tree_context(root)
    if reads is not None:
        read_bytes = ctx.read_bytes

        def counted(entry, *limit):
            reads[entry.path] += 1
            return read_bytes(entry, *limit)

        ctx.read_bytes = counted  # type: ignore[method-assign]
    check = Services()
    list(check.run(ctx))
    return {(s.binary.rsplit("/", 1)[-1], s.started_by): s for s in check.collect()}


@pytest.fixture
def vendor_tree(tmp_path: Path) -> Path:
    if not ARPD.exists():
        pytest.skip("iproute2's arpd (a real daemon()-calling ELF) is not installed")
    root = tmp_path / "rootfs"
    write_tree(
        root,
        {
            # no inittab: busybox init runs /etc/init.d/rcS
            "/etc/init.d/rcS": "#!/bin/sh\nfor i in /etc/init.d/S??* ; do\n\t$i\ndone\n/etc/init0.d/rcS\n",
            "/etc/init.d/S10init.sh": "#!/bin/sh\nmount -t proc none /proc\n",
            "/etc/init.d/S45vendor.sh": "#!/bin/sh\nrt_mgmtd\n/usr/bin/helper -x &\n",
            "/etc/init.d/K90vendor.sh": "#!/bin/sh\nkillerd &\n",
            "/etc/init0.d/rcS": "#!/bin/sh\nfor i in /etc/init0.d/S??* ; do\n\t$i start\ndone\n",
            "/etc/init0.d/S80telnetd.sh": (
                '#!/bin/sh\nif [ "$1" = "start" ]; then\n\ttelnetd -l /usr/sbin/login -i br0 &\n'
                "else\n\tkillall telnetd\nfi\n"
            ),
            "/etc/init0.d/S41inf.sh": '#!/bin/sh\nservice HTTP start\nevent LAN.UP add "service LLD2 start"\n',
            "/etc/services/HTTP.php": (
                '<?\nfwrite("w",$START,"#!/bin/sh\\n");\nfwrite("a",$START, "httpd -f ".$conf."\\n");\n'
                'fwrite("a",$STOP, "stoponlyd &\\n");\n?>\n'
            ),
            "/etc/services/LLD2.php": '<?\nfwrite("a",$START, "lld2d -c /var/lld2d.conf br0 &\\n");\n?>\n',
            "/etc/unreached.sh": "#!/bin/sh\nghostd &\n",
        },
    )
    for name in ("usr/sbin/rt_mgmtd", "usr/sbin/killerd", "usr/sbin/ghostd", "usr/sbin/stoponlyd"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARPD, root / name)
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(TRUE, root / "usr/bin/helper")
    for name in ("telnetd", "httpd", "lld2d"):
        shutil.copy(TRUE, root / "usr/sbin" / name)
    return root


def test_vendor_boot_path(vendor_tree: Path) -> None:
    found = _services(vendor_tree)
    names = {b for b, _ in found}
    # unknown vendor daemon (daemonizes itself), a backgrounded helper, catalog daemons
    assert ("rt_mgmtd", "script:/etc/init.d/S45vendor.sh:2") in found
    assert ("helper", "script:/etc/init.d/S45vendor.sh:3") in found
    assert ("telnetd", "script:/etc/init0.d/S80telnetd.sh:3") in found
    # vendor PHP service templates reached by `service NAME start` and by an event handler
    assert ("httpd", "script:/etc/services/HTTP.php:3") in found
    assert ("lld2d", "script:/etc/services/LLD2.php:2") in found
    assert found[("rt_mgmtd", "script:/etc/init.d/S45vendor.sh:2")].name == "rt_mgmtd"
    # not started at boot: a kill link, an unreached script, a stop-only command
    assert not names & {"killerd", "ghostd", "stoponlyd"}


def test_openwrt_rc_d_and_procd(tmp_path: Path) -> None:
    if not ARPD.exists():
        pytest.skip("iproute2's arpd is not installed")
    root = tmp_path / "rootfs"
    write_tree(
        root,
        {
            "/etc/inittab": "::sysinit:/etc/init.d/rcS S boot\n::shutdown:/etc/init.d/rcS K shutdown\n",
            "/etc/init.d/rcS": (
                "#!/bin/sh\nrun_scripts() {\n\tfor i in /etc/rc.d/$1*; do\n\t\t[ -x $i ] && $i $2 2>&1\n"
                '\tdone\n}\nrun_scripts "$1" "$2" &\n'
            ),
            "/etc/init.d/vendord": (
                "#!/bin/sh /etc/rc.common\nSTART=50\nPROG=/usr/sbin/vendord\nstart_service() {\n"
                '\tprocd_open_instance\n\tprocd_set_param command "$PROG" -p 8888\n\tprocd_close_instance\n}\n'
                "stop() {\n\tservice_start /usr/sbin/stopperd\n}\n"
            ),
            "/etc/init.d/disabled": "#!/bin/sh /etc/rc.common\nSTART=60\nstart() {\n\tservice_start /usr/sbin/offd\n}\n",
            "/etc/init.d/cron": "#!/bin/sh /etc/rc.common\nSTART=50\nstart() {\n\tservice_start /usr/sbin/crond -c /etc/crontabs\n}\n",
            "/etc/crontabs/root": "# m h dom mon dow command\n*/5 * * * * /usr/bin/keepalive.sh\n",
            "/usr/bin/keepalive.sh": "#!/bin/sh\npidof watchd || /usr/sbin/watchd &\n",
        },
    )
    (root / "usr/sbin").mkdir(parents=True)
    for name in ("vendord", "stopperd", "offd", "watchd", "crond"):
        shutil.copy(ARPD, root / "usr/sbin" / name)
    (root / "etc/rc.d").mkdir(parents=True)
    (root / "etc/rc.d/S50vendord").symlink_to("../init.d/vendord")
    (root / "etc/rc.d/S50cron").symlink_to("../init.d/cron")
    reads: Counter[str] = Counter()
    found = _services(root, reads)
    s = found[("vendord", "procd:/etc/init.d/vendord:6")]
    # the inittab and the init scripts are parsed by two sources each, and read once
    assert reads["/etc/inittab"] == reads["/etc/init.d/vendord"] == reads["/etc/init.d/rcS"] == 1
    assert s.port == 8888
    names = {b for b, _ in found}
    assert "stopperd" not in names  # only in stop()
    assert "offd" not in names  # no rc.d link: not enabled
    # crond runs the crontab, whose script (re)starts a daemon
    assert ("crond", "script:/etc/init.d/cron:4") in found
    assert ("watchd", "script:/usr/bin/keepalive.sh:2") in found


def test_vendor_rc_binary_strings(tmp_path: Path) -> None:
    """An rc program (compiled here by gcc with the command strings a vendor rc carries)."""
    gcc = shutil.which("gcc")
    if not ARPD.exists() or gcc is None:
        pytest.skip("needs gcc and iproute2's arpd")
    root = tmp_path / "rootfs"
    write_tree(root, {"/etc/inittab": "::sysinit:/sbin/rc init\n::respawn:/sbin/getty -L ttyS0 115200\n"})
    src = tmp_path / "rc.c"
    src.write_text(
        '#include <stdio.h>\nstatic const char *cmds[] = {"/usr/sbin/vendord -d &", "/bin/helperd -c /var/h.conf",\n'
        '  "/sbin/notadaemon -x", "/usr/sbin/dropbear -p 2222"};\n'
        "int main(void) { for (unsigned i = 0; i < 4; i++) puts(cmds[i]); return 0; }\n"
    )
    (root / "sbin").mkdir(parents=True, exist_ok=True)
    subprocess.run([gcc, "-O0", "-o", str(root / "sbin/rc"), str(src)], check=True, capture_output=True)
    for name in ("usr/sbin/vendord", "bin/helperd"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARPD, root / name)
    shutil.copy(TRUE, root / "sbin/notadaemon")
    shutil.copy(TRUE, root / "usr/sbin/dropbear")
    found = _services(root)
    by_name = {b: (sb, s) for (b, sb), s in found.items()}
    assert by_name["vendord"][0].startswith("binary:/sbin/rc@0x")
    assert by_name["helperd"][0].startswith("binary:/sbin/rc@0x")  # daemonizes itself
    assert by_name["dropbear"][1].port == 2222 and by_name["dropbear"][1].name == "ssh"
    assert "notadaemon" not in by_name
