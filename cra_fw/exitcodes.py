"""The one table of exit statuses, for every command (docs/exit-status.md)."""

from __future__ import annotations

EXIT_OK = 0  # done: analysed and no gate failed; a verdict `valid`; a pack verified
EXIT_GATE = 1  # a --fail-on/--fail-on-vuln gate failed; a verdict other than `valid`; not verified;
# a Dependency-Track upload refused
EXIT_USAGE = 2  # usage error, or an input or output that cannot be used: one line, never a traceback
EXIT_NOT_ANALYSED = (
    3  # the image was read but nothing in it could be analysed, or a stage failed (wins over 1)
)
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BROKEN_PIPE = 141  # the reader of stdout went away (128 + SIGPIPE)

EXIT_STATUS_TABLE: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "scan complete; no gate given, or nothing reached a given gate"),
    (EXIT_GATE, "a --fail-on or --fail-on-vuln gate failed; a verdict other than valid; not verified"),
    (EXIT_USAGE, "usage error, or an input or output that cannot be used"),
    (
        EXIT_NOT_ANALYSED,
        "the image was read but nothing in it could be analysed, or an analysis stage failed",
    ),
)
