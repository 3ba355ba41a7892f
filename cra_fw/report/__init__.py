"""Writers: report.json, SBOMs, SARIF, VEX, HTML."""
