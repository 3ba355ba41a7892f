#!/usr/bin/env python3
"""Check the component signatures against real non-amd64 builds of their Debian packages.

Signature vectors are strings from real builds, but the string layout a version regex relies on
(which string follows which, how much NUL padding sits between them) depends on the
architecture's linker and alignment.  This script takes every signature that names Debian
packages, downloads the bookworm build of each package for the requested architectures
(``apt-get download PKG:ARCH``, cached), unpacks it with ``dpkg-deb -x``, runs the real
:class:`cra_fw.identify.matcher.Matcher` over each ELF file (and every file a signature's
``files`` globs name) and reports, per signature and architecture, the expected upstream
release, the releases found, and OK / MISSING / WRONG.

    python scripts/check_signatures_cross_arch.py                 # armhf arm64 mipsel
    python scripts/check_signatures_cross_arch.py --arch armhf --only c-ares,libuv
    python scripts/check_signatures_cross_arch.py --offline --json out.json

Exit status: 0 when every checked signature is OK or VERSIONLESS, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cra_fw.identify.matcher import Matcher
from cra_fw.identify.merge import same_release
from cra_fw.identify.scan import MAX_FILE_BYTES, SKIP_DIRS
from cra_fw.identify.signatures import SignatureSet, default_signatures, load_signatures
from cra_fw.inventory.elf import read_elf_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the expected release is reduced exactly as the fixture builder's ground truth reduces it
from fixtures.build import upstream_version  # noqa: E402

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "fixtures" / ".cache" / "xarch-debs"  # git-ignored
DEFAULT_ARCHS = ("armhf", "arm64", "mipsel")


@dataclass(frozen=True)
class Deb:
    """One binary package of one architecture, as the local apt lists describe it."""

    name: str
    arch: str
    version: str  # full Debian version

    @property
    def upstream(self) -> str:
        return upstream_version(self.name, self.version)


@dataclass(frozen=True)
class PackageScan:
    """What the matcher found in one unpacked package: (component, version) -> first file."""

    name: str
    arch: str
    version: str
    files_scanned: int
    hits: dict[str, dict[str, str]]  # component -> version -> path of the first file giving it
    error: str = ""


@dataclass
class Row:
    """The verdict for one signature on one architecture."""

    signature: str
    arch: str
    status: str  # OK, MISSING, WRONG, VERSIONLESS, NO-PACKAGE
    expected: list[str] = field(default_factory=list)
    found: dict[str, str] = field(default_factory=dict)  # version -> "pkg:/path"
    packages: list[str] = field(default_factory=list)  # name=version scanned
    others: dict[str, list[str]] = field(default_factory=dict)  # other components' hits in these packages
    silent: list[str] = field(default_factory=list)  # packages scanned in which this signature found nothing
    by_package: dict[str, dict[str, str]] = field(default_factory=dict)  # package -> version -> file


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def available(names: list[str], arch: str) -> dict[str, Deb]:
    """Packages of ``names`` that exist for ``arch`` in the local apt lists (no network)."""
    if not names:
        return {}
    proc = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *[f"{n}:{arch}" for n in names]],
        capture_output=True,
        text=True,
    )
    out: dict[str, Deb] = {}
    for stanza in proc.stdout.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        name, a, version = fields.get("Package"), fields.get("Architecture"), fields.get("Version")
        if name in names and a == arch and version and name not in out:
            out[name] = Deb(name, arch, version)
    return out


def _deb_file(cache: Path, deb: Deb) -> Path | None:
    quoted = deb.version.replace(":", "%3a")
    exact = cache / f"{deb.name}_{quoted}_{deb.arch}.deb"
    if exact.is_file():
        return exact
    return None


def download(cache: Path, debs: list[Deb], offline: bool) -> None:
    """``apt-get download`` every package not yet in the cache (one download per package/arch)."""
    todo = [d for d in debs if _deb_file(cache, d) is None]
    if not todo:
        return
    if offline:
        log(f"offline: {len(todo)} package(s) not in {cache} are skipped")
        return
    cache.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(todo), 20):
        chunk = todo[i : i + 20]
        log(f"apt-get download {' '.join(f'{d.name}:{d.arch}' for d in chunk)}")
        cmd = [
            "apt-get",
            "-q",
            "-o",
            "APT::Sandbox::User=root",
            "download",
            *[f"{d.name}:{d.arch}={d.version}" for d in chunk],
        ]
        if subprocess.run(cmd, cwd=cache, stdout=subprocess.DEVNULL).returncode != 0:
            # one bad name fails the whole call: retry one by one so the others still come
            for d in chunk:
                if _deb_file(cache, d) is None:
                    subprocess.run(
                        cmd[:5] + [f"{d.name}:{d.arch}={d.version}"], cwd=cache, stdout=subprocess.DEVNULL
                    )


def unpack(cache: Path, deb: Deb) -> Path | None:
    """The package unpacked under ``cache/unpacked`` (done once; a stamp file marks completion)."""
    src = _deb_file(cache, deb)
    if src is None:
        return None
    dest = cache / "unpacked" / src.stem
    stamp = dest / ".unpacked"
    if not stamp.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(src), str(dest)], check=True)
        stamp.write_text("ok\n")
    return dest


_MATCHER: Matcher | None = None


def _init_worker(sig_folder: str) -> None:
    global _MATCHER
    _MATCHER = Matcher(load_signatures(Path(sig_folder)))


def scan_tree(root: Path, deb: Deb) -> PackageScan:
    """Matcher hits over the ELF files of one unpacked package, as the identify stage reads them."""
    assert _MATCHER is not None
    hits: dict[str, dict[str, str]] = {}
    scanned = 0
    for dirpath, _dirs, files in os.walk(root):
        for fname in files:
            full = Path(dirpath, fname)
            path = "/" + full.relative_to(root).as_posix()
            if path.startswith(SKIP_DIRS) or full.is_symlink() or not full.is_file():
                continue
            try:
                with open(full, "rb") as fh:
                    head = fh.read(4)
                    is_elf = head == b"\x7fELF"
                    if is_elf and fname.endswith((".ko", ".o")):
                        continue
                    if not is_elf and not _MATCHER.wants_path(path):
                        continue
                    data = head + fh.read(MAX_FILE_BYTES - 4)
            except OSError:
                continue
            scanned += 1
            info = read_elf_info(data) if is_elf else None
            for h in _MATCHER.scan(data, path, static=bool(info and info.static)):
                hits.setdefault(h.name, {}).setdefault(h.version, path)
    return PackageScan(deb.name, deb.arch, deb.version, scanned, hits)


def _scan_job(job: tuple[str, Deb]) -> PackageScan:
    root, deb = job
    try:
        return scan_tree(Path(root), deb)
    except (OSError, MemoryError, subprocess.CalledProcessError) as exc:
        return PackageScan(deb.name, deb.arch, deb.version, 0, {}, f"{type(exc).__name__}: {exc}")


def verdict(sig_name: str, arch: str, debs: list[Deb], scans: dict[tuple[str, str], PackageScan]) -> Row:
    """OK: an expected release is found and nothing else; WRONG: a release that is not the package's."""
    row = Row(sig_name, arch, "NO-PACKAGE")
    if not debs:
        return row
    row.expected = sorted({d.upstream for d in debs})
    for d in debs:
        ps = scans.get((d.name, arch))
        if ps is None:
            row.packages.append(f"{d.name}={d.version} (not downloaded)")
            continue
        row.packages.append(f"{d.name}={d.version}" + (f" ({ps.error})" if ps.error else ""))
        if not ps.hits.get(sig_name):
            row.silent.append(d.name)
        else:
            row.by_package[d.name] = dict(ps.hits[sig_name])
        for version, path in ps.hits.get(sig_name, {}).items():
            row.found.setdefault(version, f"{d.name}:{path}")
        for other, versions in ps.hits.items():
            if other != sig_name:
                row.others.setdefault(other, [])
                row.others[other] = sorted(set(row.others[other]) | set(versions))
    versions = [v for v in row.found if v]
    if not any((d.name, arch) in scans for d in debs):
        row.status = "NO-PACKAGE"
    elif any(not any(same_release(v, e) for e in row.expected) for v in versions):
        row.status = "WRONG"
    elif versions:
        row.status = "OK"
    else:
        row.status = "VERSIONLESS" if "" in row.found else "MISSING"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", action="append", help="architecture (repeatable); default armhf, arm64, mipsel")
    ap.add_argument("--only", default="", help="comma-separated signature names")
    ap.add_argument("--signatures", type=Path, help="signature folder (default: the shipped one)")
    ap.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"download cache (default {DEFAULT_CACHE})"
    )
    ap.add_argument("--jobs", type=int, default=2, help="parallel scan workers (default 2)")
    ap.add_argument("--offline", action="store_true", help="use only packages already in the cache")
    ap.add_argument("--json", type=Path, help="write the rows as JSON here")
    ap.add_argument("--all-rows", action="store_true", help="print OK rows too")
    args = ap.parse_args(argv)

    archs = tuple(args.arch or DEFAULT_ARCHS)
    sigset: SignatureSet = load_signatures(args.signatures) if args.signatures else default_signatures()
    sig_folder = str(args.signatures or Path(sigset.signatures[0].source_file).parent)
    only = {s for s in args.only.split(",") if s}
    sigs = [s for s in sigset.signatures if s.packages and (not only or s.name in only)]
    started = time.monotonic()

    per_arch: dict[str, dict[str, Deb]] = {}
    for arch in archs:
        names = sorted({p for s in sigs for p in s.packages})
        per_arch[arch] = available(names, arch)
        download(args.cache, list(per_arch[arch].values()), args.offline)

    jobs: list[tuple[str, Deb]] = []
    for arch in archs:
        for deb in per_arch[arch].values():
            root = unpack(args.cache, deb)
            if root is not None:
                jobs.append((str(root), deb))
    log(f"scanning {len(jobs)} package(s) with {args.jobs} worker(s)")
    scans: dict[tuple[str, str], PackageScan] = {}
    with ProcessPoolExecutor(
        max_workers=max(1, args.jobs), initializer=_init_worker, initargs=(sig_folder,)
    ) as pool:
        for ps in pool.map(_scan_job, sorted(jobs, key=lambda j: j[1].name), chunksize=1):
            scans[(ps.name, ps.arch)] = ps

    rows: list[Row] = []
    for sig in sigs:
        for arch in archs:
            debs = [per_arch[arch][p] for p in sig.packages if p in per_arch[arch]]
            rows.append(verdict(sig.name, arch, debs, scans))

    width = max((len(r.signature) for r in rows), default=10)
    print(
        f"{'signature':<{width}}  {'arch':<7} {'status':<11} {'expected':<14} found; (packages without a hit)"
    )
    for r in rows:
        if r.status in ("OK", "NO-PACKAGE") and not args.all_rows:
            continue
        found = ", ".join(f"{v or '(no version)'} [{where}]" for v, where in r.found.items()) or "-"
        silent = f"  (no hit: {', '.join(r.silent)})" if r.silent else ""
        print(
            f"{r.signature:<{width}}  {r.arch:<7} {r.status:<11} {','.join(r.expected):<14} {found}{silent}"
        )
    print()
    statuses = ("OK", "MISSING", "WRONG", "VERSIONLESS", "NO-PACKAGE")
    print(f"{'arch':<7} " + " ".join(f"{s:>11}" for s in statuses))
    summary: dict[str, dict[str, int]] = {}
    for arch in archs:
        counts = {s: sum(1 for r in rows if r.arch == arch and r.status == s) for s in statuses}
        summary[arch] = counts
        print(f"{arch:<7} " + " ".join(f"{counts[s]:>11}" for s in statuses))
    elapsed = time.monotonic() - started
    print(f"{len(sigs)} signatures, {len(jobs)} packages scanned in {elapsed:.1f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(
                        ["python", "scripts/check_signatures_cross_arch.py", *(argv or sys.argv[1:])]
                    ),
                    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "signature_digest": sigset.digest,
                    "summary": summary,
                    "rows": [asdict(r) for r in rows],
                    "packages": {
                        f"{ps.name}:{ps.arch}": {
                            "version": ps.version,
                            "files_scanned": ps.files_scanned,
                            "error": ps.error,
                        }
                        for ps in scans.values()
                    },
                },
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
    bad = [r for r in rows if r.status in ("MISSING", "WRONG")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
