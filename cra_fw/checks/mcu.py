"""Checks that matter on a microcontroller: what the flash gives away, and whether it is protected.

* Wi-Fi station/soft-AP credentials in ESP-IDF NVS (``nvs.net80211``) and in the ESP8266
  SDK's system parameters (last sectors of the flash), and other credentials in NVS
  (keys naming a password, token, API key or secret);
* cloud device keys (UUIDs) in vendor configuration sectors of an ESP8266 dump;
* X.509 certificates in flash sectors and image segments (DER), with their weaknesses;
* flash encryption: an ESP flash dump whose app partition is plaintext (read back from a
  device, everything in it is readable; the partition table can even mark it encrypted);
* an MCUboot image with no signature TLV, and an ESP app with no signature block while the
  flash's bootloader verifies signatures.

Everything is read from the layer details the unpackers wrote and from the extracted
files; secrets are shown as fingerprints.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from cra_fw.checks.interface import CRA_CREDENTIALS, CRA_SECRETS, Check, finding, fingerprint
from cra_fw.context import ScanContext
from cra_fw.parsers import cstr
from cra_fw.records import FileEntry, Finding, Layer, Location, Severity

CRA_ENCRYPTION = ("Annex I Part I (2)(e)",)
CRA_INTEGRITY = ("Annex I Part I (2)(f)",)
MAX_READ = 8 * 1024 * 1024
NVS_SECRET_KEY = re.compile(r"(pass|pswd|pwd|secret|token|api_?key|apikey|auth|psk|private)", re.I)
NVS_WIFI = {"sta.pswd": "station", "ap.passwd": "soft-AP"}
WEAK_AP_PASSWORDS = {"12345678", "123456789", "1234567890", "password", "00000000", "88888888", "11111111"}
UUID = re.compile(
    rb"(?<![0-9A-Za-z-])[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(?![0-9A-Za-z-])"
)
DER_CERT = re.compile(rb"\x30\x82(..)\x30\x82", re.S)
# ESP8266 NONOS SDK 2.x system parameter sector (read by hand from a Sonoff Basic dump): station
# SSID at 0x10, password at 0x37, soft-AP SSID at 0xB4, password at 0xD4
ESP8266_PARAMS = (("station", 0x10, 0x37), ("soft-AP", 0xB4, 0xD4))


def _wifi_value(raw: bytes, key: str) -> str:
    # ESP-IDF keeps sta.ssid as a blob (u32 length + 32 bytes) and passwords as 64-byte blobs
    if key.endswith("ssid") and len(raw) >= 4 and raw[:4] != b"\xff\xff\xff\xff":
        length = int.from_bytes(raw[:4], "little")
        if 0 < length <= 32 and len(raw) >= 4 + length:
            return cstr(raw[4 : 4 + length])
    return cstr(raw)


class _Base(Check):
    def _files(self, ctx: ScanContext, layer: Layer) -> list[FileEntry]:
        return [f for f in ctx.files if f.layer_id == layer.id and f.size > 0 and f.kind.value != "symlink"]


class McuCredentials(_Base):
    """Wi-Fi and cloud credentials stored in flash in plaintext."""

    name = "mcu.credentials"
    category = "credentials"

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        for layer in ctx.layers:
            if layer.format == "esp-nvs":
                yield from self._nvs(ctx, layer)
            elif layer.format == "esp-flash" and layer.details.get("chip") == "esp8266":
                yield from self._esp8266(ctx, layer)

    def _nvs(self, ctx: ScanContext, layer: Layer) -> Iterator[Finding]:
        files = {f.path: f for f in self._files(ctx, layer)}
        ssid_entry = files.get("/nvs.net80211/sta.ssid")
        ssid = _wifi_value(ctx.read_bytes(ssid_entry, 4096), "sta.ssid") if ssid_entry else ""
        for path, entry in sorted(files.items()):
            namespace, _, key = path.strip("/").partition("/")
            value_raw = ctx.read_bytes(entry, 4096)
            if namespace == "nvs.net80211" and key in NVS_WIFI:
                value = _wifi_value(value_raw, key)
                if value:
                    yield self._wifi(
                        ctx, entry, NVS_WIFI[key], ssid if key == "sta.pswd" else "", value, "NVS"
                    )
            elif namespace != "nvs.net80211" and NVS_SECRET_KEY.search(key):
                value = cstr(value_raw)
                if value:
                    yield finding(
                        ctx,
                        entry,
                        rule_id="mcu.nvs-credential",
                        category="credentials",
                        severity=Severity.HIGH,
                        title=f"Credential stored in plaintext NVS: {namespace}/{key}",
                        cra=CRA_CREDENTIALS,
                        evidence=f"NVS entry {namespace}/{key} ({len(value)} characters): {self._show(ctx, value)}",
                        remediation="Provision per-device secrets at manufacture into an encrypted NVS "
                        "(nvs_keys partition, flash encryption), never in the shipped image.",
                        fp=fingerprint(value),
                    )

    def _esp8266(self, ctx: ScanContext, layer: Layer) -> Iterator[Finding]:
        for entry in self._files(ctx, layer):
            name = entry.path.strip("/")
            data = ctx.read_bytes(entry, MAX_READ)
            if name.startswith("system_param@"):
                for mode, ssid_at, pass_at in ESP8266_PARAMS:
                    ssid = cstr(data[ssid_at : ssid_at + 32])
                    password = cstr(data[pass_at : pass_at + 64])
                    if password:
                        yield self._wifi(
                            ctx, entry, mode, ssid, password, "the SDK's system parameters", pass_at
                        )
            elif name.startswith("data@"):
                for match in list(UUID.finditer(data))[:8]:
                    value = match.group().decode()
                    yield finding(
                        ctx,
                        entry,
                        rule_id="mcu.cloud-key",
                        category="credentials",
                        severity=Severity.HIGH,
                        title="Cloud device key (UUID) stored in plaintext flash",
                        cra=CRA_CREDENTIALS,
                        evidence=f"UUID in a vendor configuration sector at +{match.start():#x}: "
                        f"{self._show(ctx, value)} (device keys such as an eWeLink apikey look like this)",
                        remediation="Keep cloud device keys in encrypted storage (flash encryption or a "
                        "secure element); rotate keys that were readable from flash.",
                        fp=fingerprint(value),
                        offset=match.start(),
                    )

    def _wifi(
        self,
        ctx: ScanContext,
        entry: FileEntry,
        mode: str,
        ssid: str,
        password: str,
        where: str,
        offset: int | None = None,
    ) -> Finding:
        weak = mode == "soft-AP" and password.lower() in WEAK_AP_PASSWORDS
        title = (
            f"Wi-Fi {mode} password stored in plaintext flash"
            if not weak
            else "Wi-Fi soft-AP uses a default password and stores it in plaintext flash"
        )
        return finding(
            ctx,
            entry,
            rule_id="mcu.wifi-default-password" if weak else "mcu.wifi-credentials",
            category="credentials",
            severity=Severity.HIGH,
            title=title,
            cra=CRA_CREDENTIALS,
            evidence=f"{mode} configuration in {where}: SSID {ssid!r}, password {self._show(ctx, password)}",
            remediation="Enable flash encryption (and NVS encryption) so stored Wi-Fi credentials cannot be "
            "read back; give every device its own soft-AP password.",
            fp=fingerprint(password),
            offset=offset,
        )

    @staticmethod
    def _show(ctx: ScanContext, value: str) -> str:
        return repr(value) if ctx.options.show_secrets else fingerprint(value)


class McuCertificates(_Base):
    """X.509 certificates stored in MCU flash and image segments."""

    name = "mcu.certificates"
    category = "secrets"

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        seen: set[str] = set()
        now = dt.datetime.now(dt.UTC)
        for layer in ctx.layers:
            if layer.format not in ("esp-flash", "esp-app", "mcuboot", "uf2", "intel-hex"):
                continue
            for entry in self._files(ctx, layer):
                data = ctx.read_bytes(entry, MAX_READ)
                for match in list(DER_CERT.finditer(data))[:32]:
                    length = int.from_bytes(match.group(1), "big") + 4
                    try:
                        cert = x509.load_der_x509_certificate(data[match.start() : match.start() + length])
                    except ValueError:
                        continue
                    fp = "sha256:" + cert.fingerprint(hashes.SHA256()).hex()[:16]
                    if fp in seen:
                        continue
                    seen.add(fp)
                    yield self._finding(ctx, entry, cert, fp, match.start(), now)

    @staticmethod
    def _finding(
        ctx: ScanContext, entry: FileEntry, cert: x509.Certificate, fp: str, offset: int, now: dt.datetime
    ) -> Finding:
        key = cert.public_key()
        problems = []
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
            problems.append(f"RSA-{key.key_size} key")
        if cert.not_valid_after_utc < now:
            problems.append(f"expired {cert.not_valid_after_utc:%Y-%m-%d}")
        if cert.subject == cert.issuer:
            problems.append("self-signed")
        subject = cert.subject.rfc4514_string()[:120]
        return finding(
            ctx,
            entry,
            rule_id="mcu.flash-certificate-weak" if problems else "mcu.flash-certificate",
            category="secrets",
            severity=Severity.MEDIUM
            if any("RSA-" in p or "expired" in p for p in problems)
            else Severity.INFO,
            title="Certificate in flash" + (f": {', '.join(problems)}" if problems else ""),
            cra=CRA_SECRETS,
            evidence=f"DER certificate at +{offset:#x}: subject {subject}, valid until "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, {fp}",
            remediation="Pin a CA with an RSA-2048+/EC key and a sane lifetime, and ship it so it can be updated.",
            fp=fp,
            offset=offset,
        )


class McuProtection(_Base):
    """Flash encryption and image signatures as a flash dump or MCU image shows them."""

    name = "mcu.protection"
    category = "hardening"

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        for layer in ctx.layers:
            if layer.format == "esp-flash" and layer.parent_id == "L0":
                yield from self._flash(ctx, layer)
            elif layer.format == "mcuboot" and layer.details.get("signature", "").startswith("none"):
                yield self._plain(
                    ctx,
                    layer,
                    "mcu.unsigned-image",
                    Severity.MEDIUM,
                    "MCUboot image carries no signature (hash only)",
                    CRA_INTEGRITY,
                    f"TLVs: {layer.details.get('tlvs', '')}",
                    "Sign release images (imgtool sign --key) and build MCUboot with signature "
                    "verification, so a modified image is refused.",
                )

    def _flash(self, ctx: ScanContext, layer: Layer) -> Iterator[Finding]:
        apps = [la for la in ctx.layers if la.parent_id == layer.id and la.format == "esp-app"]
        encrypted = [p for p in layer.details.get("encrypted_partitions", "").split(",") if p]
        if apps and layer.details.get("chip") == "esp8266":
            yield self._plain(
                ctx,
                layer,
                "mcu.flash-plaintext",
                Severity.MEDIUM,
                "Flash contents are plaintext: the ESP8266 has no flash encryption",
                CRA_ENCRYPTION,
                "readable application and configuration sectors: "
                + ", ".join(la.parent_path.strip("/") for la in apps),
                "Keep no long-lived secret in ESP8266 flash (use a secure element or per-device "
                "credentials that can be revoked), or move the product to a chip with flash encryption.",
            )
        elif apps:
            plain = ", ".join(la.parent_path.strip("/") for la in apps)
            severity = Severity.HIGH if encrypted else Severity.MEDIUM
            yield self._plain(
                ctx,
                layer,
                "mcu.flash-plaintext",
                severity,
                "Flash contents are plaintext: flash encryption is not in effect"
                + (" although the partition table marks partitions encrypted" if encrypted else ""),
                CRA_ENCRYPTION,
                f"readable application image(s) in {plain}"
                + (f"; partitions flagged encrypted: {', '.join(encrypted)}" if encrypted else ""),
                "Enable flash encryption (release mode) so code, NVS and keys cannot be read back "
                "from the chip; if this is a factory image, check that devices encrypt it on first boot.",
            )
        boots = [la for la in ctx.layers if la.parent_id == layer.id and la.format == "esp-bootloader"]
        unsigned = [la for la in apps if la.details.get("secure_boot") == "no signature block"]
        verifying = [la for la in boots if la.details.get("secure_boot", "").startswith("v2")]
        if verifying and unsigned:
            yield self._plain(
                ctx,
                layer,
                "mcu.app-unsigned-for-secure-boot",
                Severity.HIGH,
                "Application has no signature block although the bootloader is signed for Secure Boot",
                CRA_INTEGRITY,
                f"bootloader {verifying[0].parent_path} carries a Secure Boot v2 signature; "
                f"app {unsigned[0].parent_path} has none",
                "Sign the application with the Secure Boot key (espsecure sign-data --version 2).",
            )

    @staticmethod
    def _plain(
        ctx: ScanContext,
        layer: Layer,
        rule: str,
        severity: Severity,
        title: str,
        cra: tuple[str, ...],
        evidence: str,
        remediation: str,
    ) -> Finding:
        return Finding(
            rule_id=rule,
            category="hardening",
            severity=severity,
            title=title,
            cra_reference=cra,
            location=Location(
                layer_chain=ctx.layer_chain(layer.id), path=layer.parent_path, offset=layer.offset
            ),
            evidence=evidence,
            remediation=remediation,
        )
