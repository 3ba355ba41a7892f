"""Hostile input: garbage where configs are expected must not break a check."""

from __future__ import annotations

import os
import random

from cra_fw.checks import run

from .conftest import tree_context, write_tree

TARGETS = [
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/inittab",
    "/etc/init.d/rcS",
    "/etc/inetd.conf",
    "/etc/xinetd.d/x",
    "/etc/config/dropbear",
    "/etc/config/rpcd",
    "/etc/config/uhttpd",
    "/etc/config/upnpd",
    "/etc/snmp/snmpd.conf",
    "/etc/vsftpd.conf",
    "/etc/ssh/sshd_config",
    "/www/.htpasswd",
    "/etc/samba/smbpasswd",
    "/etc/lighttpd/lighttpd.conf",
    "/etc/nginx/nginx.conf",
    "/etc/ssl/x.crt",
    "/etc/mosquitto/mosquitto.conf",
    "/etc/miniupnpd/miniupnpd.conf",
    "/etc/key.pem",
    "/etc/a.der",
]


def test_garbage_configs_never_raise(tmp_path):
    rng = random.Random(4)
    files: dict[str, bytes | str] = {}
    for i, path in enumerate(TARGETS):
        if i % 3 == 0:
            files[path] = rng.randbytes(rng.randint(1, 5000))
        elif i % 3 == 1:  # structured junk: separators, unicode digits, unbalanced quotes, huge fields
            files[path] = (
                "::respawn:'unterminated \"\n" + "a:" * 500 + "\n" + "x:²:٣:ab:cd:/bin/sh\n"
                "Port ²²\nlisten_http '0.0.0.0:９０'\nconfig login\n option password\n"
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
                "tcpsvd\nstart-stop-daemon -S -x\n" + "\\\n" * 50 + "\0\0"
            )
        else:
            files[path] = "\n".join(
                rng.choice(["", "#", "=", ":", "'", "{", "}", "[x]", "service telnet", "-p"])
                * rng.randint(0, 40)
                for _ in range(200)
            )
    root = write_tree(tmp_path, files)
    os.symlink("/etc/shadow", tmp_path / "etc" / "shadow-link")  # absolute link out of the tree
    result = run(tree_context(root))
    assert [f.evidence for f in result.findings if f.rule_id == "checks.error"] == []
