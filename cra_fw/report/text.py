"""Plain-text summary of a scan for the terminal."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cra_fw.records import ScanReport


def _layer_line(report: ScanReport, layer_id: str, indent: int) -> list[str]:
    layer = report.layer(layer_id)
    detail = ", ".join(
        f"{k}={v}" for k, v in layer.details.items() if k in ("compression", "endianness", "variant", "type")
    )
    where = f" {layer.parent_path}" if layer.parent_path else ""
    extra = f" entropy={layer.entropy}" if layer.entropy is not None else ""
    files = f" files={layer.file_count}" if layer.file_count else ""
    head = (
        f"{'  ' * indent}{layer.id:<5} {layer.format}{f' ({detail})' if detail else ''}"
        f" @{layer.offset:#x}{where} size={layer.size} {layer.status.value}{files}{extra}"
    )
    lines = [head]
    for child in report.layers:
        if child.parent_id == layer_id:
            lines.extend(_layer_line(report, child.id, indent + 1))
    return lines


def summary(report: ScanReport, outdir: Path) -> str:
    """Layer tree, file kinds and finding counts; fits a screen for usual images."""
    lines = [f"{report.image.name}  {report.image.size} bytes  sha256 {report.image.sha256}", "", "Layers:"]
    if report.layers:
        tree = _layer_line(report, "L0", 1)
        if len(tree) > 40:
            tree = [*tree[:38], f"  ... {len(tree) - 38} more (see report.json)"]
        lines.extend(tree)
    kinds = Counter(f.kind.value for f in report.files)
    lines += ["", "Files: " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none")]
    if report.components:
        lines.append(f"Components: {len(report.components)}")
    sev = Counter(f.severity.value for f in report.findings if not f.suppressed)
    order = ["critical", "high", "medium", "low", "info"]
    lines.append("Findings: " + (", ".join(f"{s} {sev[s]}" for s in order if sev[s]) or "none"))
    lines += ["", f"Report: {outdir / 'report.json'}"]
    return "\n".join(lines)
