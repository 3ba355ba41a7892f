"""Build small microcontroller images with the real tools (esptool, imgtool, GNU binutils).

Ground truth is what the builders put in: the app descriptor fields written in
assembly, the version and key given to imgtool.  Each helper skips the test when its
tool is missing (``scripts/setup`` installs them: esptool/imgtool from the ``test``
extra, ``binutils-riscv64-unknown-elf`` from ``.ci/apt-packages.txt``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_MCU = ROOT.parent / "shared" / "firmware-more" / "mcu"
SHARED_RTOS = ROOT.parent / "shared" / "firmware-more" / "rtos"
BIN = Path(sys.executable).parent

# esp_app_desc_t as ESP-IDF lays it out, written field by field (ground truth of the fixture)
APP_DESC = {
    "secure_version": 7,
    "version": "2.4.1-test",
    "project_name": "cra-fw-fixture",
    "time": "12:34:56",
    "date": "Jan  2 2025",
    "idf_ver": "v5.4.2",
}

_APP_S = """
    .section .flash.appdesc, "a"
    .word 0xABCD5432
    .word {secure_version}
    .word 0, 0
1:  .ascii "{version}"
    .space 32 - (. - 1b)
2:  .ascii "{project_name}"
    .space 32 - (. - 2b)
3:  .ascii "{time}"
    .space 16 - (. - 3b)
4:  .ascii "{date}"
    .space 16 - (. - 4b)
5:  .ascii "{idf_ver}"
    .space 32 - (. - 5b)
    .space 32
    .space 80
    .section .flash.rodata, "a"
{rodata}
    .section .flash.text, "ax"
flash_fn:
    ret
    .section .iram0.text, "ax"
    .globl _start
_start:
    j _start
    .section .dram0.data, "aw"
    .word 1, 2, 3, 4
"""

# ESP32-C3 memory map (esptool's targets/esp32c3.py): DROM 0x3C000000, IROM 0x42000000
_LD_ESP32C3 = """
ENTRY(_start)
SECTIONS {
  .flash.appdesc 0x3C000020 : { KEEP(*(.flash.appdesc)) *(.flash.rodata) }
  .flash.text 0x42000020 : { *(.flash.text) }
  .iram0.text 0x40380000 : { *(.iram0.text) }
  .dram0.data 0x3FC88000 : { *(.dram0.data) }
}
"""
# ESP8266: irom0 mapped at 0x40201010 (flash 0x1000 + header), IRAM 0x40100000, DRAM 0x3FFE8000
_LD_ESP8266 = """
ENTRY(_start)
SECTIONS {
  .irom0.text 0x40201010 : { *(.flash.appdesc) *(.flash.text) *(.flash.rodata) }
  .text 0x40100000 : { *(.iram0.text) }
  .data 0x3FFE8000 : { *(.dram0.data) }
}
"""


def tool(name: str) -> str:
    """Path of a fixture tool (venv scripts first); skip the test when it is missing."""
    local = BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/setup installs it)")
    return found


def run(*cmd: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stdout[-800:]} {proc.stderr[-800:]}")


def _rodata(strings: tuple[str, ...]) -> str:
    out = []
    for text in strings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'    .asciz "{escaped}"')
    return "\n".join(out) or '    .asciz "fixture"'


def riscv_elf(workdir: Path, linker_script: str, strings: tuple[str, ...] = (), **desc: object) -> Path:
    """An RV32 ELF with an ``esp_app_desc_t`` and ``strings`` in flash rodata."""
    fields = {**APP_DESC, **desc}
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "app.S").write_text(_APP_S.format(rodata=_rodata(strings), **fields))
    (workdir / "app.ld").write_text(linker_script)
    run(tool("riscv64-unknown-elf-as"), "-march=rv32imc", "-mabi=ilp32", "-o", "app.o", "app.S", cwd=workdir)
    run(
        tool("riscv64-unknown-elf-ld"),
        "-m",
        "elf32lriscv",
        "-T",
        "app.ld",
        "-o",
        "app.elf",
        "app.o",
        cwd=workdir,
    )
    return workdir / "app.elf"


def esp32c3_app(workdir: Path, strings: tuple[str, ...] = (), **desc: object) -> Path:
    """An ESP32-C3 application image made by ``esptool elf2image``."""
    elf = riscv_elf(workdir, _LD_ESP32C3, strings, **desc)
    out = workdir / "app.bin"
    run(tool("esptool"), "--chip", "esp32c3", "elf2image", "--flash-size", "4MB", "-o", str(out), str(elf))
    return out


def esp8266_app(workdir: Path, version: int) -> Path:
    """An ESP8266 image: ``--version 2`` gives one file, ``--version 1`` the 0x00000 part."""
    elf = riscv_elf(workdir, _LD_ESP8266)
    prefix = workdir / "e8266-"
    out = workdir / "e8266-v2.bin" if version == 2 else prefix
    run(
        tool("esptool"), "--chip", "esp8266", "elf2image", "--version", str(version), "-o", str(out), str(elf)
    )
    return out if version == 2 else workdir / "e8266-0x00000.bin"


def imgtool_key(workdir: Path, kind: str = "rsa-2048") -> Path:
    key = workdir / f"{kind}.pem"
    if not key.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        run(tool("imgtool"), "keygen", "-k", str(key), "-t", kind)
    return key


def mcuboot_image(workdir: Path, payload: bytes, *args: str, name: str = "signed.bin") -> Path:
    """``imgtool sign`` on ``payload`` with the given options (header size 0x200, padded header)."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / "payload.bin"
    src.write_bytes(payload)
    out = workdir / name
    run(
        tool("imgtool"),
        "sign",
        "--header-size",
        "0x200",
        "--pad-header",
        "--slot-size",
        "0x100000",
        *args,
        str(src),
        str(out),
    )
    return out


_BOOT_S = """
    .section .iram0.text, "ax"
    .globl _start
_start:
    j _start
    .section .dram0.data, "aw"
    .asciz "fixture 2nd stage bootloader"
    .word 1, 2, 3
"""
_LD_ESP32C3_BOOT = """
ENTRY(_start)
SECTIONS {
  .iram0.text 0x403CE000 : { *(.iram0.text) }
  .dram0.data 0x3FCD5800 : { *(.dram0.data) }
}
"""


def esp32c3_bootloader(workdir: Path) -> Path:
    """A RAM-only ESP32-C3 image, as a 2nd-stage bootloader is (``esptool elf2image``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "boot.S").write_text(_BOOT_S)
    (workdir / "boot.ld").write_text(_LD_ESP32C3_BOOT)
    run(
        tool("riscv64-unknown-elf-as"), "-march=rv32imc", "-mabi=ilp32", "-o", "boot.o", "boot.S", cwd=workdir
    )
    run(
        tool("riscv64-unknown-elf-ld"),
        "-m",
        "elf32lriscv",
        "-T",
        "boot.ld",
        "-o",
        "boot.elf",
        "boot.o",
        cwd=workdir,
    )
    out = workdir / "boot.bin"
    run(
        tool("esptool"),
        "--chip",
        "esp32c3",
        "elf2image",
        "--flash-size",
        "4MB",
        "-o",
        str(out),
        str(workdir / "boot.elf"),
    )
    return out


def partition_table(rows: list[tuple[str, int, int, int, int, int]]) -> bytes:
    """An ESP-IDF partition table binary (label, type, subtype, offset, size, flags) with its MD5
    entry, laid out as ESP-IDF's gen_esp32part.py writes it (the tool is not on PyPI)."""
    import hashlib
    import struct

    body = b"".join(
        struct.pack("<2sBBII16sI", b"\xaa\x50", t, st, off, size, label.encode(), flags)
        for label, t, st, off, size, flags in rows
    )
    body += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(body).digest()
    return body + b"\xff" * (0xC00 - len(body))


def merge_bin(
    workdir: Path, chip: str, parts: list[tuple[int, Path]], size: str = "2MB", fmt: str = "raw"
) -> Path:
    """``esptool merge-bin`` of (flash offset, file) pairs: a whole flash image (or UF2)."""
    out = workdir / ("flash.uf2" if fmt == "uf2" else "flash.bin")
    args = [tool("esptool"), "--chip", chip, "merge-bin", "-o", str(out), "--format", fmt]
    if fmt == "raw":
        args += ["--pad-to-size", size]
    for offset, path in parts:
        args += [hex(offset), str(path)]
    run(*args)
    return out


def nvs_partition(workdir: Path, csv_text: str, size: int = 0x6000) -> Path:
    """An NVS partition made by Espressif's ``esp-idf-nvs-partition-gen`` from a CSV."""
    pytest.importorskip("esp_idf_nvs_partition_gen", reason="pip install esp-idf-nvs-partition-gen")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "nvs.csv").write_text(csv_text)
    out = workdir / "nvs.bin"
    run(
        sys.executable,
        "-m",
        "esp_idf_nvs_partition_gen",
        "generate",
        str(workdir / "nvs.csv"),
        str(out),
        hex(size),
    )
    return out
