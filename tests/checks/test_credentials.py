"""Credential checks on real account files (hashes made by openssl passwd, mkpasswd, Python bcrypt)."""

from __future__ import annotations

import pytest

from cra_fw.checks import run
from cra_fw.checks.credentials import Cracker, load_data
from cra_fw.checks.md4 import md4, nt_hash
from cra_fw.checks.pwhash import Crypt, apr1, identify
from cra_fw.context import ScanOptions

from .conftest import tree_context, write_tree

# Test vectors, produced once by independent tools:
MD5_ADMIN = "$1$Kx3vB9aQ$GUONF5cl8NdOMQQK/L.p51"  # openssl passwd -1 -salt Kx3vB9aQ admin
SHA256_1234 = "$5$p4Qz8wLm$m1uG32jjg4A5hkgo89/tIVRxjEqg6tGdd6LIzZkeuGC"  # openssl passwd -5 ... 1234
SHA512_PASSWORD = (
    "$6$Yt7rE2sW$KgqkYN9TYA4XvIclxa5OKJeEgzeX10ReUEBIl4NFxoXxN9CRJiA/vF9R4epPUq4m4wIjQIUIcvRmExdLeY"
    "ykq/"
)  # openssl passwd -6 -salt Yt7rE2sW password
APR1_ADMIN = "$apr1$r8sT3kQp$Px.od3FjzaNBv4svKBluI1"  # openssl passwd -apr1 -salt r8sT3kQp admin
DES_XC3511 = "AbhYvW.JxRflk"  # crypt(3) DES, salt Ab, password xc3511
YESCRYPT_VIZXV = "$y$j9T$F5Jx5fExrKuJdESG/RA1X/$Ju.NiiXI2UGBiLkhOrseFqELecCM1BWrQThdDxmdqQ2"  # vizxv
BCRYPT_888888 = "$2b$05$63rdzYMLzgaeX9bmFiGws.W6dgYxz7JPMxF3LZKyz.pHrDZUMt2tq"  # python bcrypt, cost 5
BCRYPT_ROOT = "$2b$05$JWn.bk7Yw3Zk0/AFnx.fH.PEect9JGD2fHqdbYh.Fv0HcTSzi29M."  # mkpasswd -m bcrypt -R 5 root
YESCRYPT_UNIQUE = (
    "$y$j9T$2xI2ib4LXELGVrcvymgqZ1$cpHo43DHxb173CMoM5q1dLSGRHttD5EyFT7DZUqQAB4"  # not in the list
)
SHA512_UNIQUE = (
    "$6$Qm9vZ3JlYXQ$6RzT7pPRCWW1.JckXzpNOUXZq2IK8mlLohEka7FOgWvOY0N2OTcHS9/lhj.x2vnOUpBduBfrGKz4."
    "7eyfKxnp/"
)  # S3cure-Unique-9f2!
SHA1_PASSWORD = "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="  # htpasswd -s: base64(sha1("password"))
NT_PASSWORD = "8846F7EAEE8FB117AD06BDD830B7586C"  # the widely published NT hash of "password"

PASSWD = """root:x:0:0:root:/root:/bin/ash
daemon:*:1:1:daemon:/usr/sbin:/bin/sh
admin:x:0:0:admin:/root:/bin/sh
support:x:1000:1000::/home/support:/bin/sh
user1:x:1001:1001::/home/user1:/bin/sh
op:x:1002:1002::/home/op:/bin/sh
cam:x:1003:1003::/home/cam:/bin/sh
svc:x:1004:1004::/var:/bin/false
guest:x:1005:1005::/home/guest:/bin/sh
safe:x:1006:1006::/home/safe:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
SHADOW = f"""root:{YESCRYPT_UNIQUE}:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
admin:{MD5_ADMIN}:19000:0:99999:7:::
support:{DES_XC3511}:19000:0:99999:7:::
user1:{SHA256_1234}:19000:0:99999:7:::
op:{SHA512_PASSWORD}:19000:0:99999:7:::
cam:{YESCRYPT_VIZXV}:19000:0:99999:7:::
svc:{BCRYPT_888888}:19000:0:99999:7:::
guest::19000:0:99999:7:::
safe:{SHA512_UNIQUE}:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
"""


@pytest.fixture(scope="module")
def accounts_result(tmp_path_factory):
    root = write_tree(
        tmp_path_factory.mktemp("acc"),
        {"/etc/passwd": PASSWD, "/etc/shadow": SHADOW, "/etc/group": "root:x:0:\nadm:x:4:\n"},
    )
    return run(tree_context(root), only=("credentials",))


def _summary(result):
    return sorted(
        (f.rule_id, f.location.path, f.location.line, f.extra.get("password")) for f in result.findings
    )


def test_every_account_problem_is_found_exactly(accounts_result):
    assert _summary(accounts_result) == sorted(
        [
            ("credentials.extra-uid0", "/etc/passwd", 3, None),
            ("credentials.weak-hash", "/etc/shadow", 3, None),  # admin: MD5-crypt
            ("credentials.default-password", "/etc/shadow", 3, "admin"),
            ("credentials.weak-hash", "/etc/shadow", 4, None),  # support: DES
            ("credentials.default-password", "/etc/shadow", 4, "xc3511"),
            ("credentials.default-password", "/etc/shadow", 5, "1234"),  # SHA-256-crypt
            ("credentials.default-password", "/etc/shadow", 6, "password"),  # SHA-512-crypt
            ("credentials.default-password", "/etc/shadow", 7, "vizxv"),  # yescrypt
            ("credentials.default-password", "/etc/shadow", 8, "888888"),  # bcrypt
            ("credentials.empty-password", "/etc/shadow", 9, None),
            ("credentials.service-shell", "/etc/passwd", 2, None),  # daemon with /bin/sh (locked: low)
        ]
    )


def test_account_finding_details(accounts_result):
    by_key = {(f.rule_id, f.location.line): f for f in accounts_result.findings}
    admin = by_key[("credentials.default-password", 3)]
    assert admin.severity.value == "critical"
    assert admin.category == "credentials"
    assert admin.cra_reference == ("Annex I Part I (2)(b)", "Annex I Part I (2)(d)")
    assert admin.location.layer_chain == ("L0:raw", "L1:squashfs")
    assert "md5-crypt" in admin.evidence and admin.remediation
    svc = by_key[("credentials.default-password", 8)]
    assert svc.severity.value == "high"  # /bin/false: no interactive login
    assert by_key[("credentials.service-shell", 2)].severity.value == "low"
    assert by_key[("credentials.empty-password", 9)].severity.value == "critical"


def test_redact_hides_recovered_passwords(tmp_path):
    root = write_tree(tmp_path, {"/etc/passwd": PASSWD, "/etc/shadow": SHADOW})
    result = run(tree_context(root, ScanOptions(workers=2, redact=True)), only=("credentials.accounts",))
    found = [f for f in result.findings if f.rule_id == "credentials.default-password"]
    assert len(found) == 6
    for f in found:
        assert "password" not in f.extra
        assert "admin" not in f.evidence.split(":", 1)[1] or f.location.line == 3
        assert "(redacted)" in f.evidence


def test_hashes_in_passwd_without_shadow(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/etc/passwd": f"root:{DES_XC3511}:0:0:root:/root:/bin/sh\n"
            f"bin:{BCRYPT_ROOT}:2:2:bin:/bin:/bin/false\n"
        },
    )
    result = run(tree_context(root), only=("credentials.accounts",))
    assert _summary(result) == sorted(
        [
            ("credentials.hash-in-passwd", "/etc/passwd", 1, None),
            ("credentials.weak-hash", "/etc/passwd", 1, None),
            ("credentials.default-password", "/etc/passwd", 1, "xc3511"),
            ("credentials.hash-in-passwd", "/etc/passwd", 2, None),
            # "root" is no pair for "bin", but every listed password is tried for every user
            ("credentials.default-password", "/etc/passwd", 2, "root"),
        ]
    )


def test_web_samba_openwrt_and_plaintext(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/www/.htpasswd": f"admin:{APR1_ADMIN}\nweb:{SHA1_PASSWORD}\nok:{SHA512_UNIQUE}\n",
            "/etc/lighttpd/lighttpd-htdigest.user": "admin:cam:516545e603ee25ea9e82a9b07ca8b2c2\n",
            "/etc/samba/smbpasswd": f"admin:1000:NO PASSWORDXXXXXXXXXXXXXXXXXXXXX:{NT_PASSWORD}:[U          ]:LCT-5F2A3B4C:\n"
            "nopw:1001:NO PASSWORDXXXXXXXXXXXXXXXXXXXXX:NO PASSWORDXXXXXXXXXXXXXXXXXXXXX:[NU         ]:LCT-1:\n",
            "/etc/config/rpcd": "config rpcd\n\toption socket /var/run/ubus.sock\n\n"
            "config login\n\toption username 'root'\n\toption password '$p$root'\n\n"
            "config login\n\toption username 'api'\n\toption password 'Api-Secret-42'\n",
            "/etc/init.d/cloud": "#!/bin/sh\n# password=commented-out\nPASSWORD=$1\n"
            "curl -s -u device:Xk9pq2Lm https://cloud.example.invalid/upload\n"
            'password=""\n',
            "/etc/wpa_supplicant.conf": 'network={\n  ssid="home"\n  psk="MyHomeWifi2020"\n}\n',
            "/usr/share/doc/pkg/README": "password=NotScanned123\n",
        },
    )
    result = run(tree_context(root), only=("credentials",))
    assert _summary(result) == sorted(
        [
            ("credentials.weak-hash", "/www/.htpasswd", 1, None),
            ("credentials.default-password", "/www/.htpasswd", 1, "admin"),
            ("credentials.weak-hash", "/www/.htpasswd", 2, None),
            ("credentials.default-password", "/www/.htpasswd", 2, "password"),
            ("credentials.default-password", "/etc/lighttpd/lighttpd-htdigest.user", 1, "admin"),
            ("credentials.default-password", "/etc/samba/smbpasswd", 1, "password"),
            ("credentials.empty-password", "/etc/samba/smbpasswd", 2, None),
            ("credentials.plaintext", "/etc/config/rpcd", 10, None),
            ("credentials.plaintext", "/etc/init.d/cloud", 4, None),
            ("credentials.plaintext", "/etc/wpa_supplicant.conf", 3, None),
        ]
    )
    plain = [f for f in result.findings if f.rule_id == "credentials.plaintext"]
    for f in plain:  # secrets redacted to a fingerprint by default
        assert "Api-Secret-42" not in f.evidence and "Xk9pq2Lm" not in f.evidence
        assert "sha256:" in f.evidence and "secret" not in f.extra
    shown = run(tree_context(root, ScanOptions(workers=1, show_secrets=True)), only=("credentials",))
    shown = [f for f in shown.findings if f.rule_id == "credentials.plaintext"]
    assert sorted(f.extra["secret"] for f in shown) == ["Api-Secret-42", "MyHomeWifi2020", "Xk9pq2Lm"]


def test_hash_backend_supports_every_scheme():
    c = Crypt()
    for h, pw in [
        (MD5_ADMIN, "admin"),
        (SHA256_1234, "1234"),
        (SHA512_PASSWORD, "password"),
        (DES_XC3511, "xc3511"),
        (YESCRYPT_VIZXV, "vizxv"),
        (BCRYPT_888888, "888888"),
        (APR1_ADMIN, "admin"),
    ]:
        assert c.verify(pw, h), h
        assert not c.verify(pw + "x", h), h
    assert apr1("admin", "$apr1$r8sT3kQp$") == APR1_ADMIN
    assert [identify(h).name for h in (MD5_ADMIN, DES_XC3511, YESCRYPT_VIZXV, BCRYPT_888888)] == [
        "md5-crypt",
        "des-crypt",
        "yescrypt",
        "bcrypt",
    ]
    assert identify("*") is None and identify("!") is None and identify("") is None


def test_md4_and_nt_hash_vectors():
    # RFC 1320 test suite
    assert md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"
    assert (
        md4(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890").hex()
        == "e33b4ddc9c38f2199c3e7b164fcc0536"
    )
    assert nt_hash("password") == NT_PASSWORD


def test_default_list_is_valid_data():
    data = load_data()
    assert len(data.pairs) > 100
    assert ("root", "xc3511") in {(p.user, p.password) for p in data.pairs}
    assert "" in data.passwords  # <empty> entries
    # expensive schemes get a bounded, reproducible candidate list; user-specific pairs first
    cr = Cracker(data, 1)
    yes = cr.candidates("root", identify(YESCRYPT_VIZXV).cost)
    assert 24 <= len(yes) < len(data.passwords)
    assert [c.password for c in yes[:3]] == ["", "root", "admin"]


def test_code_is_not_a_password(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "/www/app.js": "var password = chilliController.temp.password ;\n"
            "var hex_password =  str2hex ( str_password );\n"
            'FORM_password="_tos-password_"\n'
            "var pass = document.getElementById('pw').value;\n",
            "/etc/app.conf": "db_password = 'Tr0ub4dor&3'\n",
        },
    )
    result = run(tree_context(root), only=("credentials.plaintext",))
    assert _summary(result) == [("credentials.plaintext", "/etc/app.conf", 1, None)]
