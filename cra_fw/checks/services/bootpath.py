"""The boot as init runs it: every long-running program started on the way, known or not.

Starting points are the inittab's boot entries (busybox's built-in default,
``/etc/init.d/rcS``, when there is no inittab).  From there the walk follows
what a shell would run: scripts executed or sourced by path, ``for i in
/etc/init.d/S*`` loops (OpenWrt's ``run_scripts`` over ``/etc/rc.d/S*``
included), symlinks into ``init.d``, ``rc.local``, and the command strings of
vendor rc binaries (an ELF in the boot path whose strings name other scripts or
programs in the image).  Every command on the way whose program is in the image
is a start when the catalog knows it, or when it is started as a long-running
process: by a start wrapper (``service_start``, ``start-stop-daemon``, procd's
``command``), in the background (``&``), by inittab ``respawn``/``once``, or
because the ELF itself daemonizes (it imports ``daemon()``).

Lines in ``stop``/``reload``-style shell functions are not boot and are skipped.
The walk is bounded (scripts, depth, bytes read) and never leaves the layer.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from cra_fw.checks.interface import logical_lines, text_lines
from cra_fw.checks.services.base import (
    CONFIG_LIMIT,
    SCRIPT_LIMIT,
    Gathered,
    Source,
    Start,
    parse_command,
    split_command,
)
from cra_fw.checks.services.data import Daemon, ServiceData
from cra_fw.context import ScanContext
from cra_fw.records import FileEntry, FileKind

PATH_DIRS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
# inittab actions that run at boot (the others run at shutdown, ctrl-alt-del or power events).
BOOT_ACTIONS = frozenset({"sysinit", "wait", "once", "respawn", "askfirst", "boot", "bootwait"})
LONG_RUNNING_ACTIONS = frozenset({"respawn", "once", "askfirst"})
# Shell functions an init script runs at stop/reload, never at boot.
NOT_BOOT_FUNCTIONS = frozenset(
    {
        "stop",
        "stop_service",
        "reload",
        "reload_service",
        "restart",
        "shutdown",
        "service_stopped",
        "status",
        "disable",
        "uninstall",
        "usage",
        "help",
    }
)
SHELLS = frozenset({"sh", "ash", "bash", "dash", "hush", "msh", "ksh"})
# Start wrappers: the program after them is started as a long-running process.
WRAPPERS = frozenset({"service_start", "start-stop-daemon", "daemonize", "nohup", "setsid", "respawn"})
MAX_SCRIPTS = 400
MAX_DEPTH = 16
MAX_RC_BINARY = 8 * 1024 * 1024

_FUNC_RE = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w.-]*)\s*\(\s*\)\s*\{?\s*$")
_ASSIGN_RE = re.compile(r"""^\s*(?:local\s+|export\s+)?([A-Za-z_]\w*)=(["']?)([^"'\s;$`]*)\2\s*$""")
_VAR_RE = re.compile(r"\$\{([A-Za-z_]\w*|\d)\}|\$([A-Za-z_]\w*|\d)")
_FOR_RE = re.compile(r"\bfor\s+\w+\s+in\s+(.+?)\s*(?:;|$)")
_SEP_RE = re.compile(r"(&&|\|\||;|&(?!>)|\|(?!\|))")
_KEYWORDS = frozenset({"then", "do", "else", "if", "elif", "while", "until", "!", "{", "(", "}", ")", "time"})
# include "/x.php"; require($template_root."/dhcp/dhcpd.php"): the variable is the template folder
_PHP_INCLUDE_RE = re.compile(r"""^(?:include|require)(?:_once)?\s*\(?\s*(\$\w+\s*\.\s*)?["']([^"']+)["']""")
_PHP_STRING_RE = re.compile(r""""((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'""")
_CMD_STRING_RE = re.compile(rb"[ -~]{3,200}")


def _not_boot(function: str) -> bool:
    """A shell function that does not run at a normal boot (stop, reload, failsafe mode...)."""
    return function in NOT_BOOT_FUNCTIONS or function.startswith("failsafe")


def _elf_daemonizes(data: bytes) -> bool:
    """The ELF detaches itself: it names ``daemon``, or ``fork`` with ``setsid`` or ``listen``
    (a server that forks into the background); a long-running program."""
    if b"\x00daemon\x00" in data or b"\x00daemon@" in data:
        return True
    return b"\x00fork\x00" in data and (b"\x00setsid\x00" in data or b"\x00listen\x00" in data)


@dataclass
class _Walk:
    ctx: ScanContext
    data: ServiceData
    layer: str
    root: str  # where the root filesystem starts inside the layer ('' or '/rootfs')
    out: Gathered
    seen: set[tuple[str, str]]
    visited: set[str] = field(default_factory=set)
    elf_cache: dict[str, bool] = field(default_factory=dict)

    # ---- files of the layer ----------------------------------------------------------------

    def lookup(self, path: str) -> FileEntry | None:
        """The file at ``path`` as the device sees it (under this root), symlinks followed."""
        entry = self.ctx.lookup(self.layer, self.root + os.path.normpath("/" + path.lstrip("/")))
        return None if entry is None else self.resolve(entry)

    def resolve(self, entry: FileEntry) -> FileEntry | None:
        """Follow symlinks the way the device would: absolute targets start at this root."""
        cur: FileEntry | None = entry
        for _ in range(16):
            if cur is None or cur.kind != FileKind.SYMLINK:
                return cur
            target = cur.link_target or ""
            path = (
                self.root + target
                if target.startswith("/")
                else os.path.join(os.path.dirname(cur.path), target)
            )
            cur = self.ctx.lookup(self.layer, os.path.normpath("/" + path.lstrip("/")))
        return None

    def find_program(self, word: str) -> tuple[str, FileEntry | None]:
        """(path as the device sees it, resolved entry) of a command word."""
        if word.startswith("/"):
            return word, self.lookup(word)
        if "/" in word or not word:
            return word, None
        for d in PATH_DIRS:
            entry = self.lookup(f"{d}/{word}")
            if entry is not None:
                return f"{d}/{word}", entry
        return word, None

    def daemonizes(self, entry: FileEntry) -> bool:
        if entry.path not in self.elf_cache:
            data = self.ctx.read_bytes(entry, 16 * 1024 * 1024)
            self.elf_cache[entry.path] = _elf_daemonizes(data)
        return self.elf_cache[entry.path]

    # ---- records ---------------------------------------------------------------------------

    def add(
        self, binary: str, args: list[str], started_by: str, entry: FileEntry, line: int, known: bool
    ) -> None:
        key = (binary, started_by)
        if key in self.seen:
            return
        if known:
            parsed = parse_command(" ".join([binary, *args]), self.data)
            if parsed is None:
                return
            daemon, b, a, port, bind = parsed
            self.seen.add(key)
            self.out.starts.append(Start(daemon, b, tuple(a), started_by, entry, line, port, bind))
            return
        name = os.path.basename(binary)
        port = _port_from_args(args)
        self.seen.add(key)
        daemon = Daemon(name, (), "", port, "", "unknown", "")
        self.out.starts.append(Start(daemon, binary, tuple(args), started_by, entry, line, port, ""))

    # ---- walking ---------------------------------------------------------------------------

    def start_points(self) -> None:
        procd = self.lookup("/sbin/procd")
        if procd is not None and self.lookup("/sbin/ubusd") is not None:
            # procd starts the ubus daemon itself before any init script runs
            self.add("/sbin/ubusd", [], f"binary:{procd.path}", procd, 0, True)
        inittab = self.lookup("/etc/inittab")
        if inittab is None or inittab.kind == FileKind.SYMLINK:
            rcs = self.lookup("/etc/init.d/rcS")
            if rcs is not None:
                self.visit(rcs, [], 0)
            return
        for no, line in enumerate(self.out.lines(self.ctx, inittab, CONFIG_LIMIT), 1):
            if line.lstrip().startswith("#") or line.count(":") < 3:
                continue
            _id, _rl, action, process = line.split(":", 3)
            if action.strip() not in BOOT_ACTIONS:
                continue
            words = split_command(process.strip())
            if not words:
                continue
            first = words[0].lstrip("-")
            path, entry = self.find_program(first)
            if entry is None:
                if first == "/etc/init.d/rcS":
                    # procd runs the rc.d start links itself (and an overlay holds only the links)
                    self.loop("/etc/rc.d/S*", 0)
                continue
            where = f"inittab:{inittab.path}:{no}"
            login_shell = words[0].startswith("-") or "--login" in words or "-l" in words
            if os.path.basename(first) in SHELLS and login_shell:
                # a login shell on a console reads /etc/profile (Broadcom starts cfm from there)
                profile = self.lookup("/etc/profile")
                if profile is not None:
                    self.visit(profile, [], 1)
                continue
            if self.is_elf(entry):
                if action.strip() in LONG_RUNNING_ACTIONS:
                    self.command(words, where, inittab, no, background=True)
                else:
                    self.rc_binary(entry, 1)
            else:
                self.visit(entry, words[1:], 1)

    def crontabs(self) -> None:
        """When a cron daemon was started: what its crontabs run (scripts are followed from there)."""
        if not any(
            os.path.basename(s.binary) in ("crond", "cron") and s.entry.layer_id == self.layer
            for s in self.out.starts
        ):
            return
        globs = [
            f"{self.root}{g}"
            for g in ("/etc/crontabs/*", "/var/spool/cron/crontabs/*", "/etc/crontab", "/etc/cron.d/*")
        ]
        for tab in self.ctx.iter_files(globs=globs):
            if tab.layer_id != self.layer or tab.kind == FileKind.SYMLINK:
                continue
            system = tab.name == "crontab" or "/cron.d/" in tab.path  # a user field after the time
            for no, line in enumerate(text_lines(self.ctx, tab, 256 * 1024), 1):
                fields = line.split(None, 6 if system else 5)
                if line.lstrip().startswith("#") or len(fields) < (7 if system else 6) or "=" in fields[0]:
                    continue
                words = split_command(fields[-1])
                if words:
                    self.command(words, f"cron:{tab.path}:{no}", tab, no, False, 1)

    def is_elf(self, entry: FileEntry) -> bool:
        return entry.kind == FileKind.ELF or entry.elf is not None

    def visit(self, entry: FileEntry, args: list[str], depth: int) -> None:
        if entry.path in self.visited or depth > MAX_DEPTH or len(self.visited) >= MAX_SCRIPTS:
            return
        self.visited.add(entry.path)
        if self.is_elf(entry):
            self.rc_binary(entry, depth)
            return
        if entry.name.endswith(".php"):
            self.php(entry, depth)
            return
        lines = self.out.lines(self.ctx, entry, SCRIPT_LIMIT)
        if not lines:
            return
        variables: dict[str, str] = {str(i): a for i, a in enumerate(args, 1)}
        func_stack: list[str] = []
        skipping = 0
        procd: list[str] | None = None
        procd_line = 0
        for no, text in logical_lines(lines):
            t = text.strip()
            if not t or t.startswith("#"):
                continue
            m = _FUNC_RE.match(text)
            if m:
                func_stack.append(m.group(1))
                if _not_boot(m.group(1)):
                    skipping += 1
                continue
            if t == "}" and func_stack and text.startswith("}"):
                if _not_boot(func_stack.pop()):
                    skipping -= 1
                continue
            if skipping:
                continue
            am = _ASSIGN_RE.match(t)
            if am and am.group(3):
                variables.setdefault(am.group(1), am.group(3))
            t = _VAR_RE.sub(lambda v: variables.get(v.group(1) or v.group(2), v.group(0)), t)
            where = f"script:{entry.path}:{no}"
            fm = _FOR_RE.search(t)
            if fm:
                self.loop(fm.group(1), depth)
            if t.startswith("procd_set_param command"):
                if procd:
                    self.command(procd, f"procd:{entry.path}:{procd_line}", entry, procd_line, True, depth)
                procd, procd_line = split_command(t.split("command", 1)[1]), no
                continue
            if t.startswith("procd_append_param command") and procd is not None:
                procd.extend(split_command(t.split("command", 1)[1]))
                continue
            if t.startswith("procd_close_instance") and procd is not None:
                self.command(procd, f"procd:{entry.path}:{procd_line}", entry, procd_line, True, depth)
                procd = None
                continue
            parts = _SEP_RE.split(t)
            for i in range(0, len(parts), 2):
                sep_after = parts[i + 1] if i + 1 < len(parts) else ""
                prev_sep = parts[i - 1] if i > 0 else ""
                if prev_sep == "|":
                    continue  # the reading end of a pipe
                am = _ASSIGN_RE.match(parts[i])
                if am and am.group(3):
                    variables.setdefault(am.group(1), am.group(3))
                    continue
                words = split_command(parts[i].strip())
                if words:
                    self.command(words, where, entry, no, sep_after == "&", depth)
        if procd:
            self.command(procd, f"procd:{entry.path}:{procd_line}", entry, procd_line, True, depth)

    def php(self, entry: FileEntry, depth: int) -> None:
        """A vendor PHP service template (D-Link/Alpha ``/etc/services/*.php``): the shell lines it
        writes to its start script are what it starts; its ``include``s are followed."""
        in_code = False
        for no, line in enumerate(self.out.lines(self.ctx, entry, SCRIPT_LIMIT), 1):
            where = f"script:{entry.path}:{no}"
            if not in_code:
                # template text: the shell lines the template writes as they are
                text, _, rest = line.partition("<?")
                words = split_command(text.strip())
                if words and not text.lstrip().startswith("#"):
                    self.command(words, where, entry, no, text.rstrip().endswith("&"), depth)
                if not _:
                    continue
                in_code, line = True, rest
            code, end, _after = line.partition("?>")
            if end:
                in_code = False
            t = code.strip()
            if not t or t.startswith(("//", "/*", "*")) or "STOP" in t or "stopcmd" in t or "killall" in t:
                continue
            inc = _PHP_INCLUDE_RE.match(t)
            if inc:
                target = None if inc.group(1) else self.lookup(inc.group(2))
                folder = os.path.dirname(entry.path)
                while target is None and inc.group(1) and folder not in ("", "/", self.root):
                    target = self.lookup(folder[len(self.root) :] + inc.group(2))
                    folder = os.path.dirname(folder)
                if target is not None:
                    self.visit(target, [], depth + 1)
                continue
            # "prog -i ".$dev." &\n": the '&' may sit in a later literal of the same line
            background = re.search(r"&\s*(?:\\n)?[\"']", t) is not None
            for dq, sq in _PHP_STRING_RE.findall(t):
                for cmd in (dq or sq).split("\\n"):
                    words = split_command(cmd.replace('\\"', '"').strip())
                    if words:
                        self.command(words, where, entry, no, background or cmd.rstrip().endswith("&"), depth)

    def service(self, name: str, depth: int) -> None:
        """``service NAME start``: the vendor service template that starts it."""
        target = self.lookup(f"/etc/services/{name}.php")
        if target is None and name.endswith(("-", ".")):
            target = next(
                (
                    f
                    for f in self.ctx.iter_files(globs=[f"{self.root}/etc/services/{name}*.php"])
                    if f.layer_id == self.layer
                ),
                None,
            )
        if target is not None:
            self.visit(target, [], depth + 1)

    def loop(self, spec: str, depth: int) -> None:
        """``for i in /etc/init.d/S*``: run every start script the glob names, in order."""
        for word in spec.split():
            word = word.strip("'\"")
            if not word.startswith("/") or not any(c in word for c in "*?["):
                continue
            pattern = _VAR_RE.sub("*", word)
            pattern = re.sub(r"\*+", "*", pattern)
            d, base = os.path.split(pattern)
            matched = []
            for f in self.ctx.iter_files(globs=[f"{self.root}{d}/*"]):
                if f.layer_id != self.layer or os.path.dirname(f.path) != self.root + d:
                    continue
                if not fnmatch.fnmatchcase(f.name, base):
                    continue
                if base.startswith("*") and f.name.startswith("K"):
                    continue  # kill links run at shutdown
                matched.append(f)
            for f in sorted(matched, key=lambda e: e.path):
                real = self.resolve(f)
                if real is not None:
                    self.visit(real, ["start"], depth + 1)
                    continue
                # a start link whose script is not in this layer (an overlay over a missing ROM):
                # the link still says the daemon it names is enabled
                named = re.sub(r"^S\d+", "", f.name)
                if f.kind == FileKind.SYMLINK and named in self.data.daemons:
                    self.add(named, [], f"rc.d:{f.path}", f, 0, True)

    def command(
        self,
        words: list[str],
        where: str,
        entry: FileEntry,
        line: int,
        background: bool,
        depth: int = 0,
    ) -> None:
        """One shell command: follow what it runs, record what it starts."""
        while words and ("=" in words[0] and not words[0].startswith(("/", "-", "="))):
            words = words[1:]  # VAR=value prefixes
        while words and words[0] in _KEYWORDS:
            words = words[1:]
        if not words or self.runs_script(words, where, entry, line, depth):
            return
        words, wrapped = self.unwrap(words)
        if words:
            self.program(words, where, entry, line, background or wrapped, depth)

    def runs_script(self, words: list[str], where: str, entry: FileEntry, line: int, depth: int) -> bool:
        """A command that runs a script or template, not a program (``service``, ``.``, ``sh x``...):
        the script is followed; True when ``words`` was one."""
        first = os.path.basename(words[0])
        if first == "service":  # the vendor service manager's client: runs a template, is no daemon
            if len(words) > 1 and (len(words) < 3 or words[2] in ("start", "restart")):
                self.service(words[1], depth)
            return True
        if first in ("rgdb", "xmldbc") and "-A" in words[:-1]:
            # rgdb -A template.php > /var/run/x_start.sh: the template writes the start script
            template = self.lookup(words[words.index("-A") + 1])
            if template is not None:
                self.visit(template, [], depth + 1)
            return True
        if first == "event":  # registers (or fires) an event handler
            if len(words) > 3 and words[2] == "add":
                self.command(split_command(" ".join(words[3:])), where, entry, line, False, depth)
            return True
        if first in (".", "source") or (first in SHELLS and len(words) > 1 and not words[1].startswith("-")):
            _p, script = self.find_program(words[1]) if len(words) > 1 else ("", None)
            if script is not None and not self.is_elf(script):
                self.visit(script, words[2:], depth + 1)
            return True
        return False

    def unwrap(self, words: list[str]) -> tuple[list[str], bool]:
        """The command a start wrapper runs (start-stop-daemon, nohup, ...), and whether one did:
        ``[]`` when it runs nothing at boot (``start-stop-daemon -K``)."""
        wrapped = False
        if os.path.basename(words[0]) == "start-stop-daemon":
            if not any(w in ("-S", "--start") for w in words):
                return [], True
            exe = next(
                (words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-x", "--exec", "-a", "--startas")),
                "",
            )
            rest = words[words.index("--") + 1 :] if "--" in words else []
            words, wrapped = ([exe, *rest] if exe else []), True
        while words and os.path.basename(words[0]) in WRAPPERS | self.data.skip_words:
            wrapped = True
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[1:]
        return words, wrapped

    def program(
        self, words: list[str], where: str, entry: FileEntry, line: int, long_running: bool, depth: int
    ) -> None:
        """A program run by path or name: a script is followed; a catalog daemon, or an ELF started
        as a long-running process (wrapped, backgrounded or daemonizing itself), is a start."""
        first = os.path.basename(words[0])
        if first in self.data.ignore_first or first in SHELLS:
            return
        if "/init.d/" in words[0] or "/rc.d/" in words[0]:
            # /etc/init.d/x start: the script runs (service control is followed like any script)
            _p, script = self.find_program(words[0])
            if (
                script is not None
                and not self.is_elf(script)
                and (len(words) < 2 or words[1] in ("start", "boot"))
            ):
                self.visit(script, words[1:], depth + 1)
            return
        if len(words) > 1 and words[1] in ("stop", "shutdown", "kill"):
            return
        _path, prog = self.find_program(words[0])
        if prog is not None and not self.is_elf(prog):
            self.visit(prog, words[1:], depth + 1)
            return
        if prog is None:
            if (
                first in self.data.daemons
                and ("/" not in words[0] or os.path.dirname(words[0]) in PATH_DIRS)
                and not entry.name.endswith(".php")  # a template's lone word is a name, not a command
            ):
                # a catalog daemon named by a path the image lacks
                self.add(words[0], words[1:], where, entry, line, True)
            return
        if first in self.data.daemons:
            self.add(words[0], words[1:], where, entry, line, True)
            return
        if prog.name.startswith("busybox"):
            return  # a busybox applet the catalog does not list: a utility
        if long_running or self.daemonizes(prog):
            self.add(words[0], words[1:], where, entry, line, False)
        if self.is_rc_binary(prog) and prog.path not in self.visited:
            self.rc_binary(prog, depth + 1)

    def is_rc_binary(self, entry: FileEntry) -> bool:
        return entry.name in self.data.rc_binaries

    def rc_binary(self, entry: FileEntry, depth: int) -> None:
        """A vendor rc program: the command lines among its strings are what it starts."""
        if entry.name.startswith("busybox") or entry.name in ("init", "procd") or entry.size > MAX_RC_BINARY:
            return
        self.visited.add(entry.path)
        data = self.ctx.read_bytes(entry, MAX_RC_BINARY)
        for m in _CMD_STRING_RE.finditer(data):
            s = m.group().decode("ascii").strip()
            words = split_command(s)
            if not words or not (
                words[0].startswith("/") or (words[0] in self.data.daemons and len(words) > 1)
            ):
                continue
            path, prog = self.find_program(words[0])
            if prog is None:
                continue
            where = f"binary:{entry.path}@0x{m.start():x}"
            if self.is_elf(prog):
                if (
                    os.path.basename(words[0]) in self.data.daemons
                    or s.rstrip().endswith("&")
                    or (not prog.name.startswith("busybox") and self.daemonizes(prog))
                ):
                    self.command(list(words), where, entry, 0, s.rstrip().endswith("&"), depth + 1)
            elif len(self.visited) < MAX_SCRIPTS:
                self.visit(prog, words[1:], depth + 1)


def _port_from_args(args: list[str]) -> int | None:
    for flag in ("-p", "--port", "-P"):
        for i, a in enumerate(args[:-1]):
            if a == flag and args[i + 1].isdecimal() and 0 < int(args[i + 1]) < 65536:
                return int(args[i + 1])
    return None


def boot_roots(ctx: ScanContext) -> Iterator[tuple[str, str]]:
    """(layer, root) of every root filesystem init would boot (a tar may hold it under a folder)."""
    found: set[tuple[str, str]] = set()
    for e in ctx.iter_files(globs=["*/etc/inittab", "*/etc/init.d/rcS"]):
        root = e.path[: e.path.rindex("/etc/")]
        if root.count("/") <= 2 and (e.layer_id, root) not in found:
            found.add((e.layer_id, root))
            yield e.layer_id, root


class BootPath(Source):
    """Every long-running program the boot starts (catalog daemons and unknown vendor ones)."""

    def gather(self, ctx, data, out):
        seen = {(s.binary, s.started_by) for s in out.starts}
        for layer, root in boot_roots(ctx):
            walk = _Walk(ctx, data, layer, root, out, seen)
            walk.start_points()
            walk.crontabs()
