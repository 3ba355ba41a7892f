"""The only module that wires the stages together.

image -> unpack -> inventory -> (identify -> vulns), checks, bundles -> writers.
A stage that fails on this image is recorded as a finding and an error line;
the scan goes on with what the others found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from cra_fw import __version__, bundles, checks, identify, jsonout, vulns
from cra_fw.checks.policy import apply_to_report
from cra_fw.context import ScanContext, ScanOptions
from cra_fw.errors import CraFwError, InputError, OutputError
from cra_fw.fstree import remove_tree
from cra_fw.inventory import build_inventory
from cra_fw.records import (
    Assessment,
    AssessmentStatus,
    Finding,
    ImageInfo,
    Location,
    OutputFile,
    ScanReport,
    Severity,
    ToolInfo,
)
from cra_fw.regions import region_sha256
from cra_fw.report import cyclonedx, html, sarif, spdx
from cra_fw.unpack import unpack_image
from cra_fw.vulns import vex

ProgressFn = Callable[[str], None]
# what a stage says about its own coverage beyond "complete" (e.g. vulns: no database)
Assessments = tuple[Assessment, ...]
Writer = Callable[[ScanReport, Path], "Path | None"]


def _identify(report: ScanReport, ctx: ScanContext) -> Assessments:
    result = identify.run(ctx)
    report.components.extend(result.components)
    report.dependencies.extend(result.dependencies)
    report.findings.extend(result.findings)
    return ()


def _vulns(report: ScanReport, ctx: ScanContext) -> Assessments:
    result = vulns.run(list(report.components), ctx)
    report.vulnerabilities.extend(result.matches)
    report.findings.extend(result.findings)
    return result.assessments


def _checks(report: ScanReport, ctx: ScanContext) -> Assessments:
    result = checks.run(ctx)
    report.findings.extend(result.findings)
    report.services.extend(result.services)
    report.hardening.extend(result.hardening)
    report.hardening_summary.extend(result.hardening_summary)
    return ()


def _bundles(report: ScanReport, ctx: ScanContext) -> Assessments:
    result = bundles.scan_embedded(ctx)
    report.bundles.extend(result.verdicts)
    report.findings.extend(result.findings)
    return ()


# The analysis stages after inventory, in order (vulns reads identify's components).
ANALYSIS_STAGES: tuple[tuple[str, Callable[[ScanReport, ScanContext], Assessments]], ...] = (
    ("identify", _identify),
    ("vulns", _vulns),
    ("checks", _checks),
    ("bundles", _bundles),
)
# The writers after report.json, in order.
WRITERS: tuple[tuple[str, Writer], ...] = (
    ("cyclonedx", cyclonedx.write),
    ("spdx", spdx.write),
    ("sarif", sarif.write),
    ("vex", vex.write),
    ("html", html.write),
)


def image_info(path: Path) -> ImageInfo:
    """Size and digests of the image at ``path``, in one pass over its bytes."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by _hash_image
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return _hash_image(path, fh)


def _hash_image(path: Path, fh: BinaryIO) -> ImageInfo:
    """Size and digests of the image, in one pass over its bytes (closes ``fh``).

    The SPDX, CycloneDX and HTML outputs name the image by all three digests.

    hashlib lets go of the GIL while it hashes, so in a thread of its own this runs on
    the second core while the first one unpacks.
    """
    sha256, sha512, md5 = hashlib.sha256(), hashlib.sha512(), hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                size += len(block)
                sha256.update(block)
                sha512.update(block)
                md5.update(block)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return ImageInfo(
        name=path.name,
        size=size,
        sha256=sha256.hexdigest(),
        sha512=sha512.hexdigest(),
        md5=md5.hexdigest(),
        path=str(path),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def scan(
    image: Path, outdir: Path, options: ScanOptions | None = None, progress: ProgressFn | None = None
) -> ScanReport:
    """Scan one image; write report.json (and the other outputs) into ``outdir``."""
    options = options or ScanOptions()
    say = progress or (lambda _m: None)
    image = Path(image)
    if not image.exists():
        raise InputError(f"{image}: no such file")
    if not image.is_file():
        raise InputError(f"{image}: not a regular file; give the firmware image file")
    outdir = Path(outdir).resolve()
    image = image.resolve()
    prepare_outdir(outdir, options.replace_outputs, keep=image)
    try:
        fh = open(image, "rb")  # noqa: SIM115 - closed by _hash_image
        size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise InputError(f"cannot read {image}: {exc.strerror}") from exc
    hashing = ThreadPoolExecutor(1, thread_name_prefix="hash-image")
    digests = hashing.submit(_hash_image, image, fh)
    hashing.shutdown(wait=False)
    report = ScanReport(
        image=ImageInfo(name=image.name, size=size, sha256="", sha512="", md5="", path=str(image)),
        tool=ToolInfo("cra-fw", __version__),
        started=_now(),
        extractor=options.extractor,
    )
    try:
        workspace = (
            outdir / "extracted"
            if options.keep_extracted
            else Path(tempfile.mkdtemp(prefix=".work-", dir=outdir))
        )
    except OSError as exc:
        raise OutputError(f"cannot write in the output folder {outdir}: {exc.strerror or exc}") from exc
    report.workspace = workspace
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    deadline = t0 + options.limits.scan_timeout if options.limits.scan_timeout else None
    try:
        if report.image.size == 0:
            report.findings.append(
                Finding(
                    rule_id="unpack.empty-input",
                    category="unpack",
                    severity=Severity.MEDIUM,
                    title="The image is empty (zero bytes)",
                    cra_reference=("Annex I Part II 1",),
                    location=Location(layer_chain=("L0:raw",), path=image.name),
                    remediation="Check the download or build step that produced this file.",
                )
            )
            report.image = digests.result()
            report.errors.append(f"{image.name} is empty: nothing to analyse")
            report.assessments.append(
                Assessment("unpack", AssessmentStatus.NOT_ASSESSED, "the image is empty", 1.0)
            )
        else:
            unpacked = unpack_image(image, workspace, options, lambda: digests.result().sha256, say, deadline)
            report.image = digests.result()
            report.layers.extend(unpacked.layers)
            report.findings.extend(unpacked.findings)
            report.assessments.append(unpacked.assessment)
            report.stats["sandboxed"] = 1.0 if unpacked.sandboxed else 0.0
            report.stats["extracted_bytes"] = float(unpacked.extracted_bytes)
            timings["unpack"] = time.monotonic() - t0
            if unpacked.assessment.status == AssessmentStatus.NOT_ASSESSED:
                report.errors.append(_not_analysed_line(image.name, unpacked.assessment.reason))
            t1 = time.monotonic()
            inventory = build_inventory(report.layers, unpacked.specials, options, say)
            report.files.extend(inventory.files)
            report.findings.extend(inventory.findings)
            timings["inventory"] = time.monotonic() - t1
            ctx = ScanContext(
                image=report.image,
                layers=report.layers,
                files=report.files,
                options=options,
                workspace=workspace,
            )
            if options.analyse:
                _run_analysis(report, ctx, timings, say, deadline)
                _apply_policy(report, options, say)
    finally:
        if not report.image.sha256 and digests.exception() is None:
            report.image = digests.result()  # a stage failed before the digests were asked for
        report.finished = _now()
        report.stats.update({f"seconds_{k}": round(v, 3) for k, v in timings.items()})
        failures = write_outputs(report, outdir, say) if options.analyse else []
        if not options.analyse:
            write_report_json(report, outdir)
        if not options.keep_extracted:
            remove_tree(workspace)
    if failures:
        raise OutputError(
            f"{'; '.join(failures)}: the outputs in {outdir} are incomplete (report.json records the errors)"
        )
    return report


# Every file a scan writes into its output folder (the evidence pack and --force know them).
OWN_FILES = (
    "report.json",
    "report.json.tmp",
    "report.html",
    "sbom.cdx.json",
    "sbom.cdx.xml",
    "sbom.spdx.json",
    "findings.sarif",
    "vex.cdx.json",
    "vex.csaf.json",
    "build-sbom-diff.json",
    "evidence.zip",
    "evidence.zip.sig",
    ".evidence.zip.tmp",
)


def _own(name: str) -> bool:
    return name in OWN_FILES or name == "extracted" or name.startswith(".work-")


def prepare_outdir(outdir: Path, replace: bool, keep: Path | None = None) -> None:
    """Make ``outdir`` an empty folder for this scan's outputs.

    A folder holding anything is refused, so outputs of an earlier scan (of another
    image) never mix with this one's; ``replace`` (``--force``) removes cra-fw's own
    files from it first and leaves everything else alone.
    """
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"output {outdir} exists and is not a folder: give a folder with -o")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        entries = sorted(os.listdir(outdir))
    except OSError as exc:
        raise OutputError(f"cannot use the output folder {outdir}: {exc.strerror or exc}") from exc
    if not entries:
        return
    if not replace:
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
        raise OutputError(
            f"output folder {outdir} is not empty ({shown}): choose an empty folder, or pass --force "
            "to replace an earlier scan's outputs (cra-fw removes only its own files)"
        )
    for name in entries:
        if _own(name) and (keep is None or outdir / name != keep):
            remove_tree(outdir / name)


def _not_analysed_line(name: str, reason: str) -> str:
    """The error line of a scan that analysed nothing: the real cause, not a guess."""
    if reason == "no known format found":
        return f"no known format found in {name}: not a firmware image, encrypted, or truncated"
    return f"nothing in {name} could be analysed: {reason}"


def _apply_policy(report: ScanReport, options: ScanOptions, say: ProgressFn) -> None:
    """Mark suppressed findings (kept, never deleted) before any writer runs."""
    if options.policy is None:
        return
    _policy, expired = apply_to_report(report, options.policy)
    for item in expired:
        say(f"policy: suppression expired, no longer applied: {item}")


def _stage_failed(report: ScanReport, name: str, exc: BaseException) -> None:
    message = f"{name} stage failed: {type(exc).__name__}: {exc}"[:500]
    report.errors.append(message)
    report.findings.append(
        Finding(
            rule_id=f"{name}.stage-failed",
            category=name,
            severity=Severity.INFO,
            title=f"The {name} analysis could not complete on this image",
            cra_reference=(),
            evidence=message,
            remediation="Report this as a cra-fw bug with the image if you can share it.",
        )
    )


# the topic each stage's assessment is about (counts shown as "not assessed" unless complete)
TOPICS = {"identify": "components", "vulns": "vulnerabilities", "checks": "checks", "bundles": "bundles"}


def _run_analysis(
    report: ScanReport, ctx: ScanContext, timings: dict[str, float], say: ProgressFn, deadline: float | None
) -> None:
    """Each stage in turn; ``seconds_<stage>`` is recorded for each that ran to the end.

    Every stage leaves an assessment of its topic: complete, partial (it covers no
    more of the image than unpacking did) or not assessed with the reason.
    """
    unpack = report.assessment("unpack")
    skipped: list[str] = []
    ran: set[str] = set()

    def topics(name: str) -> tuple[str, ...]:
        return ("vulns", "kev") if name == "vulns" else (name,)

    for name, stage in ANALYSIS_STAGES:
        if name == "vulns" and ("identify" not in ran or unpack.status == AssessmentStatus.NOT_ASSESSED):
            why = (
                "components were not identified"
                if "identify" not in ran
                else "nothing in the image could be analysed"
            )
            for topic in topics(name):
                _assess(report, topic, AssessmentStatus.NOT_ASSESSED, why)
            continue
        if deadline is not None and time.monotonic() >= deadline:
            skipped.append(name)
            for topic in topics(name):
                _assess(
                    report,
                    topic,
                    AssessmentStatus.NOT_ASSESSED,
                    "the scan's time limit (--timeout) was reached",
                )
            continue
        start = time.monotonic()
        say(f"{name}...")
        try:
            own = list(stage(report, ctx))
        except (CraFwError, Exception) as exc:  # noqa: BLE001 - a stage bug must not lose the scan
            _stage_failed(report, name, exc)
            for topic in topics(name):
                _assess(report, topic, AssessmentStatus.NOT_ASSESSED, f"the {name} stage failed: {exc}"[:300])
            continue
        timings[name] = time.monotonic() - start
        ran.add(name)
        if not any(item.topic == TOPICS[name] for item in own):
            own.insert(0, Assessment(TOPICS[name], AssessmentStatus.COMPLETE))
        for item in own:
            status, reason = _with_unpack(item.status, item.reason, unpack)
            report.assessments.append(Assessment(item.topic, status, reason))
    if skipped:
        report.findings.append(
            Finding(
                rule_id="scan.limit.time",
                category="scan",
                severity=Severity.MEDIUM,
                title=f"The scan's time limit was reached: {', '.join(skipped)} did not run",
                cra_reference=(),
                evidence=f"stages not run: {', '.join(skipped)}",
                remediation="Raise --timeout to analyse the whole image.",
            )
        )
        report.errors.append(f"time limit reached: {', '.join(skipped)} not run")


def _with_unpack(status: AssessmentStatus, reason: str, unpack: Assessment) -> tuple[AssessmentStatus, str]:
    """A stage covers no more of the image than unpacking did."""
    if unpack.status == AssessmentStatus.NOT_ASSESSED:
        return AssessmentStatus.NOT_ASSESSED, "nothing in the image could be analysed"
    if unpack.status == AssessmentStatus.PARTIAL and status == AssessmentStatus.COMPLETE:
        pct = f"{unpack.share * 100:.1f}".rstrip("0").rstrip(".")
        return AssessmentStatus.PARTIAL, f"{pct}% of the image was not analysed"
    return status, reason


def _assess(report: ScanReport, stage: str, status: AssessmentStatus, reason: str) -> None:
    report.assessments.append(Assessment(TOPICS.get(stage, stage), status, reason))


def write_outputs(report: ScanReport, outdir: Path, say: ProgressFn | None = None) -> list[str]:
    """Every writer, then report.json listing what they wrote with hashes; returns the failures.

    A writer that fails does not stop the others; its failure is recorded in
    report.json and returned, and the caller fails the scan (never a silent gap).
    """
    failures: list[str] = []
    for name, write in WRITERS:
        try:
            write(report, outdir)
        except (CraFwError, Exception) as exc:  # noqa: BLE001 - one writer must not lose the others
            failures.append(f"the {name} writer failed: {type(exc).__name__}: {exc}"[:300])
    report.errors.extend(failures)
    report.outputs = []
    for name in OWN_FILES:
        path = outdir / name
        if name != "report.json" and not name.startswith((".", "evidence.zip")) and path.is_file():
            size = path.stat().st_size
            report.outputs.append(OutputFile(name, region_sha256(path, 0, size), size))
    write_report_json(report, outdir)
    return failures


def write_report_json(report: ScanReport, outdir: Path) -> Path:
    path = outdir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(jsonout.dumps(report))
    os.replace(tmp, path)
    return path
