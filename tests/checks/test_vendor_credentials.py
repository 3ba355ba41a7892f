"""Vendor credentials beyond account files: config databases, script logins, first-boot password
pipes, WPS PINs, SNMP communities, RADIUS secrets, authorized keys, mosquitto passwords.

The config lines are the vendors' own layouts (read from the shared images: Tozed's UCI and shell
exports, D-Link/Alpha's XML defaults and telnetd line, Broadcom's default.cfg, CoovaChilli's
defaults); the mosquitto file was written by the real ``mosquitto_passwd`` (Debian mosquitto 2.0.11).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

from cra_fw.checks import run
from cra_fw.checks.interface import fingerprint
from cra_fw.checks.pwhash import Crypt, identify
from cra_fw.context import ScanOptions

from .conftest import DATA, tree_context, write_tree

MD5_TECHNICIAN = hashlib.md5(b"technician").hexdigest()  # what Tozed stores (unsalted MD5)
MD5_UNIQUE = hashlib.md5(b"Q7-not-a-default").hexdigest()


def _summary(result):
    return sorted(
        (f.rule_id, f.location.path, f.location.line, f.extra.get("account", ""))
        for f in result.findings
        if f.category == "credentials"
    )


def test_config_database_accounts(tmp_path: Path) -> None:
    defaults_xml = (
        "<account>\n\t<entry>\n\t\t<name>admin</name>\n\t\t<password></password>\n\t</entry>\n"
        "\t<entry>\n\t\t<name>user</name>\n\t\t<password>Uniq-9-pass</password>\n\t</entry>\n</account>\n"
        "<wan>\n\t<user></user>\n\t<password></password>\n</wan>\n"  # an unset PPPoE slot
    )
    root = write_tree(
        tmp_path,
        {
            "/etc/config/tozed": "config tozed 'cfg'\n"
            "\toption tr069_ServerUsername 'p'\n\toption tr069_ServerPassword 'p'\n"
            f"\toption TZ_USERNAME 'user'\n\toption TZ_PASSWD '{MD5_UNIQUE}'\n"
            f"\toption TZ_USER1_USERNAME 'technician'\n\toption TZ_USER1_PASSWD '{MD5_TECHNICIAN}'\n"
            "\toption TZ_WEB_USER_SHOW_HIDE_PREF '81DFD45FFFFFFFFFF7F21FFFE2860C2BB'\n",
            "/etc/tozed_param": 'export TZTR069_ConnectionRequestUname="acsuser"\n'
            'export TZTR069_ConnectionRequestPassword="acspass"\n'
            'export TZ_PPP_USERNAME="$1"\nexport TZ_PPP_PASSWORD="$2"\n',  # variables: not passwords
            "/etc/defnodes/defaultvalue.xml": defaults_xml,
            "/usr/share/www/form.chi": 'FORM_username="tos-accept"\nFORM_password="_tos-password_"\n',
        },
    )
    (root / "etc/config/defaultvalue.gz").write_bytes(gzip.compress(defaults_xml.encode()))
    result = run(tree_context(root), only=("credentials.config-accounts",))
    assert _summary(result) == sorted(
        [
            ("credentials.plaintext", "/etc/config/tozed", 3, "p"),
            ("credentials.weak-hash", "/etc/config/tozed", 5, "user"),
            ("credentials.weak-hash", "/etc/config/tozed", 7, "technician"),
            ("credentials.default-password", "/etc/config/tozed", 7, "technician"),
            ("credentials.plaintext", "/etc/tozed_param", 2, "acsuser"),
            ("credentials.empty-password", "/etc/defnodes/defaultvalue.xml", 4, "admin"),
            ("credentials.plaintext", "/etc/defnodes/defaultvalue.xml", 8, "user"),
            ("credentials.empty-password", "/etc/config/defaultvalue.gz", 4, "admin"),
            ("credentials.plaintext", "/etc/config/defaultvalue.gz", 8, "user"),
        ]
    )
    tr069 = next(f for f in result.findings if f.location.line == 2 and "tozed_param" in f.location.path)
    assert "acspass" not in tr069.evidence and fingerprint("acspass") in tr069.evidence


def test_telnetd_login_from_the_file_the_script_reads(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "/etc/config/image_sign": "wrgn49_dlob_dir300b5\n",
            "/etc/init0.d/S80telnetd.sh": '#!/bin/sh\nif [ "$1" = "start" ]; then\n'
            "\timage_sign=`cat /etc/config/image_sign`\n"
            "\ttelnetd -l /usr/sbin/login -u Alphanetworks:$image_sign -i br0 &\nfi\n",
            "/etc/init.d/plain.sh": "#!/bin/sh\ntelnetd -l /bin/login &\n",  # no -u: no login to report
        },
        modes={"/etc/init0.d/S80telnetd.sh": 0o755, "/etc/init.d/plain.sh": 0o755},
    )
    result = run(tree_context(root), only=("credentials.script-logins",))
    [f] = result.findings
    assert (f.location.path, f.location.line, f.extra["account"]) == (
        "/etc/init0.d/S80telnetd.sh",
        4,
        "Alphanetworks",
    )
    assert f.severity.value == "critical" and f.extra["password_from"] == "/etc/config/image_sign"
    assert fingerprint("wrgn49_dlob_dir300b5") in f.evidence and "wrgn49" not in f.evidence
    shown = run(
        tree_context(root, ScanOptions(workers=1, show_secrets=True)), only=("credentials.script-logins",)
    )
    assert "wrgn49_dlob_dir300b5" in shown.findings[0].evidence


def test_plaintext_vendor_forms(tmp_path: Path) -> None:
    key = "AAAAB3NzaC1yc2EAAAADAQABAAABAQDuLKVreW2p8il5V4C/nolnyEcD8GtNoC0N6Ynu3d3QGFukY05Z0iax3MQkHHII6"
    root = write_tree(
        tmp_path,
        {
            "/etc/init.d/wifimesh": f'#!/bin/sh\necho "ssh-rsa {key} dev@laptop" > /etc/dropbear/authorized_keys\n'
            'echo -e "w1f1m35h\\nw1f1m35h" | passwd root\necho -e "$PW\\n$PW" | passwd root\n',
            "/etc/hostapd.conf": "interface=wlan0\nap_pin=12345670\nwps_state=2\n",
            "/etc/default.cfg": '<snmp state="disable" readCommunity="public" writeCommunity="private"/>\n',
            "/etc/chilli/defaults": "HS_RADSECRET=testing123    # Set to be your RADIUS shared secret\n"
            "HS_UAMSECRET=$SECRET\n",
            "/etc/dropbear/authorized_keys": f"ssh-rsa {key} vendor\n",
        },
        modes={"/etc/init.d/wifimesh": 0o755},
    )
    result = run(
        tree_context(root, ScanOptions(workers=1, show_secrets=True)), only=("credentials.plaintext",)
    )
    got = sorted(
        (f.location.path, f.location.line, f.extra.get("rule"), f.extra.get("secret"))
        for f in result.findings
    )
    assert got == sorted(
        [
            ("/etc/init.d/wifimesh", 2, "authorized-key", key),
            ("/etc/init.d/wifimesh", 3, "passwd-pipe", "w1f1m35h"),
            ("/etc/hostapd.conf", 2, "wps-pin", "12345670"),
            ("/etc/default.cfg", 1, "snmp-community", "public"),
            ("/etc/default.cfg", 1, "snmp-community", "private"),
            ("/etc/chilli/defaults", 1, "radius-secret", "testing123"),
            ("/etc/dropbear/authorized_keys", 1, "authorized-key", key),
        ]
    )


def test_mosquitto_pbkdf2_passwords() -> None:
    lines = (DATA / "mosquitto-passwd").read_text().splitlines()
    admin, alice = (line.split(":", 1)[1] for line in lines)
    scheme = identify(admin)
    assert scheme is not None and scheme.name == "pbkdf2-sha512" and scheme.weak  # 101 iterations
    crypt = Crypt()
    assert crypt.verify("admin", admin) and not crypt.verify("admin1", admin)
    assert crypt.verify("Uniq-Pass-9", alice) and not crypt.verify("admin", alice)


def test_mosquitto_password_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"/etc/mosquitto/passwd": (DATA / "mosquitto-passwd").read_text()})
    result = run(tree_context(root), only=("credentials.web",))
    assert sorted((f.rule_id, f.location.line, f.extra.get("password")) for f in result.findings) == [
        ("credentials.default-password", 1, "admin"),
        ("credentials.weak-hash", 1, None),
        ("credentials.weak-hash", 2, None),
    ]


LOGIN_SH = r"""#!/bin/sh
if ( ! grep -qs '^root:[!x]\?:' /etc/shadow || \
     ! grep -qs '^root:[!x]\?:' /etc/passwd ) && \
   [ -z "$FAILSAFE" ]
then
	echo "Login failed."
	exit 0
fi
exec /bin/ash --login
"""  # OpenWrt 12.09's /bin/login.sh


def test_openwrt_unset_root_password(tmp_path: Path) -> None:
    shadow = "root:x:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n"
    unset = write_tree(tmp_path / "a", {"/bin/login.sh": LOGIN_SH, "/etc/shadow": shadow})
    [f] = run(tree_context(unset), only=("credentials.unset-root",)).findings
    assert (f.rule_id, f.location.path, f.location.line) == ("credentials.empty-password", "/etc/shadow", 1)
    assert "unset" in f.evidence and f.severity.value == "critical"
    hashed = write_tree(
        tmp_path / "b", {"/bin/login.sh": LOGIN_SH, "/etc/shadow": shadow.replace(":x:", ":$1$ab$cd:", 1)}
    )
    assert run(tree_context(hashed), only=("credentials.unset-root",)).findings == ()
    no_login_sh = write_tree(tmp_path / "c", {"/etc/shadow": shadow})  # 'x' elsewhere: a locked account
    assert run(tree_context(no_login_sh), only=("credentials.unset-root",)).findings == ()
