"""Detection data (TOML/TSV), shipped in the wheel as ``cra_fw.signatures``; no code."""
