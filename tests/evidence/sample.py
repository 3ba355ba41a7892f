"""A ScanReport built from the stages' real record types, with hostile strings in it.

Used where a test needs a report independent of the fixture images (which the
HTML and pack tests also use when present).  The values are those of a real
OpenWrt-style image: busybox 1.36.1 with dropbear, openssl 1.1.1k.
"""

from __future__ import annotations

from cra_fw.records import (
    Component,
    Evidence,
    Finding,
    ImageInfo,
    Layer,
    LayerStatus,
    Location,
    ScanReport,
    Severity,
    ToolInfo,
)

HOSTILE = '<script>alert("x")</script><img src="http://127.0.0.1:9/leak.png">"\'><iframe src=//e.invalid>'
HOSTILE_PATH = "/etc/</style><base href=http://e.invalid/>\x00\x1b[31m.conf"
HOSTILE_BYTES = "caf\udcff \x07\x1b]0;pwned\x07"  # a lone surrogate (non-UTF-8 name) and terminal escapes

ALL_STAGES = {
    "seconds_unpack": 0.1,
    "seconds_inventory": 0.1,
    "seconds_identify": 0.2,
    "seconds_vulns": 0.1,
    "seconds_checks": 0.3,
    "seconds_bundles": 0.1,
}


def _chain() -> tuple[str, ...]:
    return ("L0:raw", "L1:squashfs")


def sample_report(
    *,
    stages: dict[str, float] | None = None,
    with_vulns: bool = True,
    with_checks: bool = True,
    with_bundles: bool = True,
) -> ScanReport:
    """A report with two layers, findings in each category, two components, one KEV match."""
    image = ImageInfo(
        name="router-fw.bin",
        size=4_194_304,
        sha256="9f2b5c0d" * 8,
        sha512="1a2b3c4d" * 16,
        md5="0f" * 16,
        path="/tmp/x",
    )
    report = ScanReport(
        image=image,
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-11-26T23:00:00Z",
        finished="2026-11-26T23:00:09Z",
        extractor="unblob",
    )
    report.layers = [
        Layer("L0", None, "raw", 0, 4_194_304, "ab" * 32, LayerStatus.EXTRACTED, 0),
        Layer(
            "L1",
            "L0",
            "squashfs",
            0x40000,
            3_000_000,
            "cd" * 32,
            LayerStatus.EXTRACTED,
            1,
            parent_path="/",
            extractor="unblob",
            file_count=412,
            note=HOSTILE,
        ),
        Layer("L2", "L0", "unknown", 0x3F0000, 65536, "ef" * 32, LayerStatus.UNKNOWN, 1, entropy=7.99),
    ]
    loc = Location(layer_chain=_chain(), path="/etc/shadow", line=1)
    report.findings = [
        Finding(
            "credentials.empty-password",
            "credentials",
            Severity.CRITICAL,
            "Account 'root' has an empty password",
            ("Annex I Part I (2)(b)", "Annex I Part I (2)(d)"),
            loc,
            evidence="root::19000:0:99999:7:::",
            remediation="Set a unique password per device or disable the account.",
        ),
        Finding(
            "secrets.private-key",
            "secrets",
            Severity.HIGH,
            "Private key baked into the image " + HOSTILE,
            ("Annex I Part I (2)(d)", "Annex I Part I (2)(e)"),
            Location(layer_chain=_chain(), path=HOSTILE_PATH, offset=4096),
            evidence=HOSTILE + HOSTILE_BYTES,
            fingerprint="sha256:0123456789abcdef",
        ),
        Finding(
            "services.telnet",
            "services",
            Severity.HIGH,
            "telnetd started from inittab",
            ("Annex I Part I (2)(b)", "Annex I Part I (2)(j)"),
            Location(layer_chain=_chain(), path="/etc/inittab", line=5),
        ),
        Finding(
            "hardening.canary",
            "hardening",
            Severity.LOW,
            "No stack canary in /usr/sbin/dropbear",
            ("Annex I Part I (2)(k)",),
            Location(layer_chain=_chain(), path="/usr/sbin/dropbear"),
        ),
        Finding(
            "services.ssh-root-password",
            "services",
            Severity.MEDIUM,
            "Root login with password over SSH",
            ("Annex I Part I (2)(b)",),
            Location(layer_chain=_chain(), path="/etc/config/dropbear"),
            suppressed=True,
            suppression_reason="factory test image only; expires 2027-01-01",
        ),
        Finding(
            "unpack.high-entropy",
            "unpack",
            Severity.INFO,
            "Unidentified high-entropy region",
            ("Annex I Part II 1",),
            Location(layer_chain=("L0:raw", "L2:unknown"), offset=0x3F0000),
        ),
    ]
    report.components = [
        Component(
            "busybox",
            "1.36.1",
            purl="pkg:generic/busybox@1.36.1",
            cpe="cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*",
            licenses=("GPL-2.0-only",),
            kind="application",
            evidence=(Evidence("signature", 0.9, "/bin/busybox", "L1"),),
            files=("L1:/bin/busybox",),
        ),
        Component(
            "openssl",
            "1.1.1k",
            purl="pkg:generic/openssl@1.1.1k",
            cpe="cpe:2.3:a:openssl:openssl:1.1.1k:*:*:*:*:*:*:*",
            licenses=("OpenSSL",),
            evidence=(Evidence("signature", 0.95, "/usr/lib/libssl.so.1.1", "L1"),),
            files=("L1:/usr/lib/libssl.so.1.1",),
        ),
        Component(HOSTILE, "1<b>2</b>", purl="pkg:generic/x", evidence=(Evidence("filename", 0.3),)),
    ]
    stats = dict(ALL_STAGES if stages is None else stages)
    if with_vulns:
        from cra_fw.vulns.records import ARTICLE14_NOTE, Triage, VulnMatch

        common = dict(
            component_key="openssl@1.1.1k",
            component_purl="pkg:generic/openssl@1.1.1k",
            component_name="openssl",
            component_version="1.1.1k",
            aliases=(),
            source="nvd",
            cvss_v4_vector="",
            cvss_v4_score=None,
            match_method="cpe",
            matched_range="cpe:2.3:a:openssl:openssl >=1.1.1 <1.1.1l",
        )
        report.vulnerabilities = [
            VulnMatch(
                advisory_id="CVE-2021-3711",
                summary="SM2 decryption buffer overflow",
                severity=Severity.CRITICAL,
                cvss_v31_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                cvss_v31_score=9.8,
                fixed_version="1.1.1l",
                **common,
            ),
            VulnMatch(
                advisory_id="CVE-2021-3449",
                summary="NULL pointer deref in signature_algorithms " + HOSTILE,
                severity=Severity.MEDIUM,
                cvss_v31_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
                cvss_v31_score=5.9,
                fixed_version="1.1.1k",
                kev=True,
                kev_date_added="2021-11-03",
                kev_due_date="2022-05-03",
                actively_exploited=ARTICLE14_NOTE,
                **common,
            ),
            VulnMatch(
                advisory_id="CVE-2021-23840",
                summary="Integer overflow in CipherUpdate",
                severity=Severity.HIGH,
                cvss_v31_vector="",
                cvss_v31_score=7.5,
                fixed_version="1.1.1j",
                triage=Triage("not_affected", "code_not_present", detail="EVP not used"),
                **common,
            ),
        ]
        report.findings.append(
            Finding(
                "vuln.actively-exploited",
                "vulnerability",
                Severity.CRITICAL,
                "openssl 1.1.1k has an actively exploited vulnerability (CVE-2021-3449)",
                ("Annex I Part I (2)(a)", "Annex I Part II 1", "Annex I Part II 2", "Article 14(2)"),
                Location(layer_chain=_chain(), path="/usr/lib/libssl.so.1.1"),
            )
        )
    else:
        stats.pop("seconds_vulns", None)
    if with_checks:
        from cra_fw.checks.hardening import summarize
        from cra_fw.checks.interface import ElfHardening, Service

        report.services = [
            Service(
                "telnetd",
                "/usr/sbin/telnetd",
                23,
                "0.0.0.0",
                "tcp",
                "inittab:/etc/inittab:5",
                "none",
                layer_chain=_chain(),
                config="/etc/inittab",
            ),
            Service(
                "dropbear",
                "/usr/sbin/dropbear",
                22,
                "",
                "tcp",
                "procd:/etc/init.d/dropbear",
                "password",
                layer_chain=_chain(),
                config="/etc/config/dropbear",
                notes=HOSTILE,
            ),
        ]

        def elf(path: str, arch: str, pie: str, relro: str, canary: str, fortify: str) -> ElfHardening:
            return ElfHardening(
                path, _chain(), arch, 32, "little", "DYN", False, True, False, pie, relro, canary, fortify
            )

        # as the checks stage makes them: one verdict per ELF file, one summary per architecture
        report.hardening = [
            elf("/bin/busybox", "mips", "no", "partial", "no", "no"),
            elf("/usr/sbin/dropbear", "mips", "no", "partial", "no", "no"),
            elf("/lib/libc.so", "mips", "dso", "full", "yes", "n/a"),
            elf("/usr/bin/app", "arm", "yes", "full", "yes", "yes"),
            elf("/usr/lib/libapp.so", "arm", "dso", "full", "yes", "n/a"),
        ]
        report.hardening_summary = list(summarize(report.hardening))
    else:
        stats.pop("seconds_checks", None)
    if not with_bundles:
        stats.pop("seconds_bundles", None)
    report.stats = stats
    return report
