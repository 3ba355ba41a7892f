"""busybox/SysV inittab: consoles, gettys and daemons started by init."""

from __future__ import annotations

import os

from cra_fw.checks.services.base import (
    Source,
    Start,
    add_start,
    is_shell,
    make_finding,
    opt_value,
    split_command,
)
from cra_fw.checks.services.data import Daemon
from cra_fw.records import FileEntry


def _console(
    name: str, auth: str, words: list[str], where: str, entry: FileEntry, line: int, tty: str
) -> Start:
    """A shell or login program on a console (``tty`` stands in the bind address)."""
    daemon = Daemon(name, (), "serial", None, "", auth, "")
    return Start(daemon, words[0], tuple(words[1:]), where, entry, line, None, tty)


class Inittab(Source):
    """busybox and SysV inittab: id:runlevels:action:process."""

    globs = ("*/etc/inittab",)

    def parse(self, ctx, data, entry, lines, out):
        for no, line in enumerate(lines, 1):
            if line.lstrip().startswith("#") or line.count(":") < 3:
                continue
            ident, _rl, action, process = line.split(":", 3)
            process = process.strip()
            if not process or action in (
                "ctrlaltdel",
                "shutdown",
                "restart",
                "sysinit",
                "wait",
                "boot",
                "bootwait",
                "powerfail",
                "powerwait",
                "powerokwait",
                "initdefault",
            ):
                continue
            tty = ident.strip() or "console"
            words = split_command(process)
            if not words:
                continue
            first = words[0].lstrip("-")
            where = f"inittab:{entry.path}:{no}"
            if is_shell(first, data):
                out.findings.append(
                    make_finding(
                        ctx,
                        "services.shell-no-login",
                        entry,
                        no,
                        f"{line.strip()} (shell on {tty} without login)",
                        f"shell on {tty}",
                    )
                )
                out.starts.append(_console("console-shell", "none", words, where, entry, no, tty))
                continue
            base = os.path.basename(first)
            if base in ("getty", "agetty"):
                autologin = opt_value(words, "-a") or opt_value(words, "--autologin")
                login_prog = opt_value(words, "-l")
                if ("-n" in words and login_prog and is_shell(login_prog, data)) or autologin:
                    out.findings.append(
                        make_finding(
                            ctx,
                            "services.shell-no-login",
                            entry,
                            no,
                            f"{line.strip()} (getty skips the login)",
                            f"getty on {tty}",
                        )
                    )
                    auth = "none"
                else:
                    auth = "password"
                out.starts.append(_console("console-login", auth, words, where, entry, no, tty))
                continue
            add_start(data, out, process, where, entry, no)
