"""Writers: report.json, SBOMs, SARIF, VEX, HTML."""

# Said by every SBOM writer for a component listed without a version, so that a reviewer
# does not read the gap as an omission of the tool.
VERSION_UNKNOWN = "unknown: the image holds no record of this release"
