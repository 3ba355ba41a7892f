"""Vendor accounts in configuration databases and start scripts.

Rules (all ``credentials.*``, see :mod:`cra_fw.checks.credentials`):
- web UI / TR-069 / vendor accounts in key-value configs (NVRAM defaults ``key=value``, OpenWrt
  UCI ``option key 'value'``, XML ``<key value="..."/>`` or ``key="..."`` attributes, INI/JSON
  ``"key": "value"``): a user key and a password key with the same prefix make one account
  (``http_username``/``http_passwd``, ``TZ_SUPER_USERNAME``/``TZ_SUPER_PASSWD``).  A crypt or
  unsalted MD5/SHA-1 hex value is tried against the default list; a literal is a plaintext
  password.  The key pairs are data: ``signatures/credentials/config-accounts.toml``.
- backdoor logins on a start script's command line: ``telnetd -u user:password`` (D-Link/Alpha
  ``Alphanetworks:$image_sign``, the variable read from the file the script ``cat``s).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from cra_fw.checks.credentials import (
    CAT,
    Cracker,
    _default_pw_finding,
    _empty_pw_finding,
    _plaintext_finding,
    _weak_hash_finding,
    load_data,
    plaintext_candidates,
)
from cra_fw.checks.interface import Check, text_lines
from cra_fw.checks.pwhash import identify
from cra_fw.context import ScanContext
from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir
from cra_fw.records import FileEntry, FileKind, Finding, Severity

# key = value in the formats configs use; the key is group "k", the value "v".
_KV_RES = (
    re.compile(r"""^\s*option\s+(?P<k>[\w.-]+)\s+['"]?(?P<v>[^'"]*)['"]?\s*$"""),  # UCI
    re.compile(r"""^\s*(?:export\s+)?(?P<k>[A-Za-z_][\w.-]*)\s*=\s*['"]?(?P<v>[^'"\s#]*)['"]?\s*$"""),
    re.compile(r"""<(?P<k>[A-Za-z_][\w.-]*)\s+value\s*=\s*"(?P<v>[^"]*)"\s*/?>"""),  # <k value="v"/>
    re.compile(r"""<(?P<k>[A-Za-z_][\w.-]*)>(?P<v>[^<]*)</(?P=k)>"""),  # <k>v</k>
    re.compile(r""""(?P<k>[A-Za-z_][\w.-]*)"\s*:\s*"(?P<v>[^"]*)\""""),  # JSON
)
_ATTR_RE = re.compile(r"""\b(?P<k>[A-Za-z_][\w.-]*)\s*=\s*"(?P<v>[^"]*)\"""")
# Files another credential check reads in full (accounts, htpasswd, Samba, rpcd logins).
_OWNED = frozenset(
    {
        "passwd",
        "shadow",
        "group",
        "gshadow",
        "passwd-",
        "shadow-",
        "smbpasswd",
        "rpcd",
        "uhttpd",
        "luci",
        "httpd.conf",
        "htpasswd",
        ".htpasswd",
        "htdigest",
        "lighttpd.user",
        "lighttpd-plain.user",
    }
)
_CODE = (".lua", ".js", ".php", ".py", ".pl", ".rb", ".c", ".h", ".asp", ".htm", ".html", ".cgi")
_HEX_RE = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class AccountKeys:
    user: re.Pattern[str]  # group "p": the account's prefix
    password: re.Pattern[str]
    files: tuple[str, ...]
    what: dict[str, str]  # prefix word -> what the account is for (tr069, wifi...)


@lru_cache(maxsize=4)
def load_account_keys(base: Path | None = None) -> AccountKeys:
    root = (base or signatures_dir()) / "credentials"
    try:
        d = tomllib.loads((root / "config-accounts.toml").read_text())
        return AccountKeys(
            re.compile(d["user_key"], re.I),
            re.compile(d["password_key"], re.I),
            tuple(d["files"]),
            dict(d["what"]),
        )
    except (OSError, KeyError, re.error, ValueError) as exc:
        raise SignatureDataError(
            f"credential signatures in {root} are unusable ({exc}); restore them from the cra-fw release"
        ) from exc


def config_pairs(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line, key, value) for every key-value the line holds, in any of the usual formats."""
    for no, line in enumerate(lines, 1):
        if len(line) > 8000 or line.lstrip().startswith(("#", ";", "//")):
            continue
        hit = False
        for rx in _KV_RES:
            for m in rx.finditer(line):
                hit = True
                yield no, m.group("k"), m.group("v")
        if not hit and "<" in line:
            for m in _ATTR_RE.finditer(line):
                yield no, m.group("k"), m.group("v")


def _gunzip_lines(ctx: ScanContext, entry: FileEntry) -> list[str]:
    """A gzip-compressed config database (D-Link ``/etc/config/defaultvalue.gz``), bounded."""
    if entry.size > 256 * 1024:
        return []
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = d.decompress(ctx.read_bytes(entry, 256 * 1024), 4 * 1024 * 1024)
    except zlib.error:
        return []
    if b"\0" in data[:8192]:
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def _placeholder(value: str) -> bool:
    """A variable, a template marker or a word standing for "no password here"."""
    v = value.strip()
    if any(c in v for c in "$%`") or v.lower() in load_data().ignore_values:
        return True
    return set(v) <= set("*x.#?-_") or (len(v) > 1 and v[0] == v[-1] and not v[0].isalnum())


def _hex_matches(password: str, digest: str) -> bool:
    algo = hashlib.md5 if len(digest) == 32 else hashlib.sha1
    return algo(password.encode()).hexdigest() == digest.lower()


class ConfigAccounts(Check):
    """User/password key pairs in vendor configuration databases and NVRAM defaults."""

    name = "credentials.config-accounts"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        keys = load_account_keys()
        cracker = Cracker(load_data(), ctx.options.workers)
        files = {e.path: e for e in plaintext_candidates(ctx)}
        for e in ctx.iter_files(globs=list(keys.files)):
            if e.size <= 1024 * 1024 and e.abs_path:
                files.setdefault(e.path, e)
        for entry in files.values():
            if entry.name in _OWNED or entry.name.endswith((".htpasswd", ".htdigest", ".user", *_CODE)):
                continue  # another check's file, or program source (its `user = x` are variables)
            lines = (
                _gunzip_lines(ctx, entry) if entry.name.endswith(".gz") else text_lines(ctx, entry, 1 << 20)
            )
            if lines:
                yield from self._file(ctx, cracker, keys, entry, lines)

    def _file(
        self, ctx: ScanContext, cracker: Cracker, keys: AccountKeys, entry: FileEntry, lines: list[str]
    ) -> Iterator[Finding]:
        users: dict[str, list[tuple[int, str]]] = {}
        passwords: list[tuple[int, str, str, str]] = []
        for no, k, v in config_pairs(lines):
            um = keys.user.fullmatch(k)
            if um:
                users.setdefault((um.group("p") or "").lower(), []).append((no, v))
                continue
            pm = keys.password.fullmatch(k)
            if pm:
                passwords.append((no, pm.group("p").lower(), k, v))
        for no, prefix, key, value in passwords:
            near = users.get(prefix)
            if not near:
                continue  # a password with no account beside it: the plaintext rules judge it
            # the account key nearest the password (XML entries, NVRAM lists sorted by name)
            _ln, user = min(near, key=lambda u: (abs(u[0] - no), u[0] > no))
            if user == "" and value == "":
                continue  # an unset slot
            yield from self._account(ctx, cracker, keys, entry, no, user or "?", prefix, key, value)

    def _account(self, ctx, cracker, keys, entry, no, user, prefix, key, value) -> Iterator[Finding]:
        what = next((w for p, w in keys.what.items() if p in prefix), "web/vendor account")
        if value == "":
            yield _empty_pw_finding(ctx, entry, no, user, what.capitalize(), Severity.HIGH)
            return
        scheme = identify(value)
        if scheme is not None and value.startswith("$"):
            if scheme.weak:
                yield _weak_hash_finding(ctx, entry, no, user, value, scheme.name)
            pair = cracker.crack(user, value)
            if pair is not None:
                yield _default_pw_finding(ctx, entry, no, user, what, pair, value, Severity.CRITICAL)
            return
        if _HEX_RE.fullmatch(value):
            name = "unsalted-md5" if len(value) == 32 else "unsalted-sha1"
            yield _weak_hash_finding(ctx, entry, no, user, value, name)
            pair = cracker.crack_with(user, lambda p, d=value: _hex_matches(p, d), f"hex:{value}")
            if pair is not None:
                yield _default_pw_finding(ctx, entry, no, user, what, pair, value, Severity.CRITICAL)
            return
        if _placeholder(value):
            return  # a variable or template placeholder (an account's password may be short)
        yield from _plaintext_finding(ctx, entry, no, user, value, f"{what} ({key})", Severity.HIGH)


# ---- command-line logins in start scripts ---------------------------------------------------

_TELNETD_U = re.compile(r"""\btelnetd\b[^\n]*?\s-u\s*['"]?(?P<user>[\w.@-]+):(?P<value>[^\s'"]+)""")
_CAT_ASSIGN = re.compile(r"""^\s*(?P<var>[A-Za-z_]\w*)=[`$(]+\s*cat\s+(?P<path>/[\w./-]+)\s*[`)]""")
_LIT_ASSIGN = re.compile(r"""^\s*(?P<var>[A-Za-z_]\w*)=(["']?)(?P<value>[^"'\s$`;]+)\2\s*$""")


class ScriptLogins(Check):
    """``telnetd -u user:password`` in start scripts (a fixed login outside /etc/passwd)."""

    name = "credentials.script-logins"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        for entry in plaintext_candidates(ctx):
            lines = text_lines(ctx, entry, 1024 * 1024)
            if not any("telnetd" in line and "-u" in line for line in lines):
                continue
            yield from self._script(ctx, entry, lines)

    def _script(self, ctx: ScanContext, entry: FileEntry, lines: list[str]) -> Iterator[Finding]:
        values: dict[str, tuple[str, str]] = {}  # var -> (value, where it came from)
        for line in lines:
            m = _CAT_ASSIGN.match(line)
            if m:
                f = ctx.lookup(entry.layer_id, m.group("path"))
                f = ctx.resolve(f) if f is not None else None
                if f is not None:
                    text = ctx.read_text(f, 4096).strip().splitlines()
                    if text:
                        values[m.group("var")] = (text[0].strip(), f.path)
                continue
            m = _LIT_ASSIGN.match(line)
            if m:
                values.setdefault(m.group("var"), (m.group("value"), entry.path))
        for no, line in enumerate(lines, 1):
            if line.lstrip().startswith("#"):
                continue
            m = _TELNETD_U.search(line)
            if not m:
                continue
            user, raw = m.group("user"), m.group("value")
            var = re.fullmatch(r"\$\{?([A-Za-z_]\w*)\}?", raw)
            value, source = values.get(var.group(1), ("", "")) if var else (raw, entry.path)
            if not value:
                continue
            yield from _plaintext_finding(
                ctx,
                entry,
                no,
                user,
                value,
                "a start script",
                Severity.CRITICAL,
                "telnetd-login",
                title="Fixed telnet login on a start script's command line",
                note=f"telnetd -u; password from {source}",
                remediation="Remove the built-in login; telnet should not run at all, and never with "
                "an account that is the same on every device.",
                more={"password_from": source},
            )


# ---- OpenWrt's unset root password ------------------------------------------------------------

_UNSET_ROOT_TEST = re.compile(r"\^root:\[!x\]")  # login.sh: grep '^root:[!x]\?:' /etc/shadow


class UnsetRootLogin(Check):
    """OpenWrt before 14.07: root's 'x' or '!' means "no password set", and ``/bin/login.sh`` (the
    telnetd login program) then starts a root shell without asking for one."""

    name = "credentials.unset-root"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        for login in ctx.iter_files(globs=["*/bin/login.sh"]):
            text = ctx.read_text(login, 64 * 1024)
            if (
                not _UNSET_ROOT_TEST.search(text)
                or "exec /bin/ash" not in text
                and "exec /bin/sh" not in text
            ):
                continue
            root = login.path[: login.path.rindex("/bin/login.sh")]
            for name in ("/etc/shadow", "/etc/passwd"):
                entry = ctx.lookup(login.layer_id, root + name)
                if entry is None or entry.kind == FileKind.SYMLINK:
                    continue
                lines = text_lines(ctx, entry, 256 * 1024)
                no, fields = next(
                    ((n, ln.split(":")) for n, ln in enumerate(lines, 1) if ln.startswith("root:")), (0, [])
                )
                if (
                    len(fields) > 1
                    and fields[1] in ("x", "!")
                    and (name == "/etc/shadow" or fields[1] == "!")
                ):
                    yield replace(
                        _empty_pw_finding(ctx, entry, no, "root", "Account"),
                        evidence=f"root: password field '{fields[1]}' means unset on OpenWrt; {login.path} "
                        "gives a root shell without a password (telnet) until one is set",
                    )
                    break
