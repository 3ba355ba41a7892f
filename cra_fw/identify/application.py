"""The application's own identity on a microcontroller image, and the chip it runs on.

A Linux image is named by its distribution; an MCU image by its application.  In order
of trust:

1. an ESP-IDF application descriptor (``esp_app_desc_t``: project name and version),
   unless it is the prebuilt one of the Arduino core (``arduino-lib-builder``), which
   names Arduino's build, not the product;
2. a firmware product the signatures found (ESPHome, Tasmota, Meshtastic, CircuitPython...);
3. a Zephyr boot banner that names the application (``*** Booting My Application
   v1.0.1-... ***``: NCS 2.6+ prints the application's name and version there);
4. a Nordic DFU package's manifest name, with the MCUboot header's version;
5. the MCUboot header version, under the image's file name.

The chip comes from the layer details (ESP image chip id, UF2 family, Nordic manifest
SoC).  The result is one ``identify.application`` finding; the SBOM writers make it
the top component with the chip as the device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cra_fw.context import ScanContext
from cra_fw.records import Component, Finding, Layer, Location, Severity

RULE = "identify.application"
ARDUINO_DESCRIPTORS = ("arduino-lib-builder", "esp32-arduino-lib-builder")
NOT_THE_APPLICATION = ("tf-m", "u-boot", "mcuboot")  # firmware kinds that boot or guard the app
BANNER = re.compile(
    rb"\*\*\* Booting (?P<name>[^\x00*]{1,64}?) v(?P<version>\d+\.\d+\.\d+)[^\x00*]{0,40}\*\*\*"
)
BANNER_NOT_APP = ("Zephyr OS build", "nRF Connect SDK", "Zephyr OS", "MCUboot")
MAX_BANNER_READ = 16 << 20
_CRA = ("Annex I Part II (1)",)


def _device(layers: Iterable[Layer]) -> str:
    for layer in layers:
        chip = layer.details.get("chip", "")
        if chip and not chip.startswith(("no-family", "family-", "chip-id-")):
            return chip
        soc = layer.details.get("soc", "")
        if soc:
            return soc
    return ""


def _mcuboot_version(text: str) -> str:
    return text[:-2] if text.endswith("+0") else text


def identify_application(ctx: ScanContext, components: Iterable[Component]) -> Finding | None:
    """The ``identify.application`` finding for an MCU image, or None for other images."""
    layers = list(ctx.layers)
    mcu = [la for la in layers if la.format in _MCU_FORMATS]
    if not mcu:
        return None
    device = _device(mcu)
    name = version = source = ""
    for layer in mcu:
        project = layer.details.get("project_name", "")
        if layer.format == "esp-app" and project and project not in ARDUINO_DESCRIPTORS:
            name, version, source = (
                project,
                layer.details.get("app_version", ""),
                f"esp_app_desc_t ({layer.id})",
            )
            break
    if not name:
        products = [c for c in components if c.kind == "firmware" and c.name not in NOT_THE_APPLICATION]
        if products:
            best = max(
                products, key=lambda c: (bool(c.version), max((e.confidence for e in c.evidence), default=0))
            )
            name, version, source = best.name, best.version, f"component signature ({best.name})"
    mcuboot = next((la for la in mcu if la.format == "mcuboot"), None)
    package = next((la for la in mcu if la.format == "nordic-dfu" and la.details.get("name")), None)
    if not name and package is not None:
        name, source = package.details["name"], f"Nordic DFU manifest ({package.id})"
        if mcuboot is not None:
            version = _mcuboot_version(mcuboot.details.get("version", ""))
            source += f", version from the MCUboot header ({mcuboot.id})"
    if not name and mcuboot is not None:
        banner = _banner(ctx, mcuboot)
        if banner is not None:
            name, version = banner
            source = f"boot banner ({mcuboot.id})"
        else:
            name = _stem(ctx.image.name)
            version = _mcuboot_version(mcuboot.details.get("version", ""))
            source = f"MCUboot header ({mcuboot.id})"
    if not name:
        name, source = _stem(ctx.image.name), "image file name"
    title = f"Application: {name} {version or '(version unknown)'}" + (f" on {device}" if device else "")
    return Finding(
        rule_id=RULE,
        category="identify",
        severity=Severity.INFO,
        title=title,
        cra_reference=_CRA,
        location=Location(path=ctx.image.name),
        evidence=f"{source}: name {name!r}, version {version!r}, device {device or 'unknown'!r}",
        remediation="",
        extra={"name": name, "version": version, "device": device, "source": source},
    )


_MCU_FORMATS = frozenset(
    {
        "esp-app",
        "esp-bootloader",
        "esp-flash",
        "mcuboot",
        "uf2",
        "intel-hex",
        "nordic-dfu",
    }
)


def _stem(name: str) -> str:
    for suffix in (".bin", ".hex", ".uf2", ".zip", ".signed", ".elf"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name or "firmware"


def _banner(ctx: ScanContext, layer: Layer) -> tuple[str, str] | None:
    """An application-named Zephyr boot banner in the MCUboot payload."""
    for entry in ctx.files:
        if entry.layer_id != layer.id or entry.size <= 0 or entry.size > MAX_BANNER_READ:
            continue
        try:
            data = ctx.read_bytes(entry, MAX_BANNER_READ)
        except OSError:
            continue
        for match in BANNER.finditer(data):
            name = match.group("name").decode("utf-8", "replace").strip()
            if name and not name.startswith(BANNER_NOT_APP):
                return name, match.group("version").decode()
    return None
