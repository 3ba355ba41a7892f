"""Credential checks: account files, web/Samba/OpenWrt password files, plaintext passwords.

Rules (rule_id: what):
- credentials.empty-password: an account or web user logs in without a password.
- credentials.default-password: a hash matches a password from
  ``signatures/credentials/default-credentials.tsv`` (the password goes to
  ``extra["password"]`` unless ``--redact``).
- credentials.weak-hash: DES, MD5-crypt, APR1, BSDi, LM or unsalted hashes.
- credentials.extra-uid0: a second account with UID 0.
- credentials.hash-in-passwd: a hash in world-readable /etc/passwd (no shadow).
- credentials.service-shell: a service account with an interactive shell.
- credentials.plaintext: a literal password in a script or config.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cra_fw.checks.interface import (
    CRA_CREDENTIALS,
    Check,
    finding,
    fingerprint,
    logical_lines,
    regular_files,
    text_lines,
)
from cra_fw.checks.md4 import nt_hash
from cra_fw.checks.pwhash import Crypt, HashBackendUnavailable, identify
from cra_fw.checks.uci import parse_uci
from cra_fw.context import ScanContext
from cra_fw.errors import SignatureDataError
from cra_fw.paths import signatures_dir
from cra_fw.records import FileEntry, FileKind, Finding, Severity

CAT = "credentials"
EMPTY = "<empty>"
# Hashing budget per hash, in MD5-crypt units: cheap schemes try the whole list,
# yescrypt (~300 units) about 70 candidates.  Count-based, so results are reproducible.
HASH_BUDGET = 20000
MIN_CANDIDATES = 24


@dataclass(frozen=True)
class DefaultPair:
    user: str
    password: str
    source: str


@dataclass(frozen=True)
class CredentialData:
    pairs: tuple[DefaultPair, ...]
    passwords: tuple[str, ...]  # unique, in list order
    login_shells: frozenset[str]
    nologin_shells: frozenset[str]
    service_accounts: frozenset[str]
    locked_prefixes: tuple[str, ...]
    plaintext_rules: tuple[tuple[str, str, re.Pattern[str], Severity], ...]
    ignore_values: frozenset[str]
    min_length: int


@lru_cache(maxsize=4)
def load_data(base: Path | None = None) -> CredentialData:
    """Load and validate ``signatures/credentials/`` once."""
    root = (base or signatures_dir()) / "credentials"
    try:
        pairs = []
        for no, line in enumerate((root / "default-credentials.tsv").read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 3:
                raise SignatureDataError(
                    f"{root}/default-credentials.tsv:{no}: need user<TAB>password<TAB>source"
                )
            pw = "" if cols[1] == EMPTY else cols[1]
            pairs.append(DefaultPair(cols[0], pw, cols[2]))
        acc = tomllib.loads((root / "accounts.toml").read_text())
        pt = tomllib.loads((root / "plaintext.toml").read_text())
        rules = tuple(
            (r["id"], r["description"], re.compile(r["regex"], re.M), Severity.parse(r["severity"]))
            for r in pt["rule"]
        )
    except (OSError, KeyError, ValueError, re.error) as exc:
        raise SignatureDataError(
            f"credential signatures in {root} are unusable ({exc}); restore them from the cra-fw release"
        ) from exc
    seen: dict[str, None] = {}
    for p in pairs:
        seen.setdefault(p.password, None)
    return CredentialData(
        pairs=tuple(pairs),
        passwords=tuple(seen),
        login_shells=frozenset(acc["login_shells"]),
        nologin_shells=frozenset(acc["nologin_shells"]),
        service_accounts=frozenset(acc["service_accounts"]),
        locked_prefixes=tuple(acc["locked_prefixes"]),
        plaintext_rules=rules,
        ignore_values=frozenset(v.lower() for v in pt["ignore_values"]),
        min_length=int(pt["min_length"]),
    )


# ---- recovering default passwords ------------------------------------------------------------


class Cracker:
    """Tries the default list against hashes; caches per hash; hashes in parallel threads."""

    def __init__(self, data: CredentialData, workers: int = 2) -> None:
        self.data = data
        self.workers = max(1, workers)
        self._cache: dict[tuple[str, str], DefaultPair | None] = {}
        try:
            self._crypt: Crypt | None = Crypt()
            self.error = ""
        except HashBackendUnavailable as exc:
            self._crypt = None
            self.error = str(exc)

    def candidates(self, user: str, cost: int) -> list[DefaultPair]:
        """Pairs for this user first, then user=password, then every other password."""
        own = [p for p in self.data.pairs if p.user.lower() == user.lower()]
        out: dict[str, DefaultPair] = {}
        for p in own:
            out.setdefault(p.password, p)
        out.setdefault(user, DefaultPair(user, user, "user-equals-password"))
        for p in self.data.pairs:
            out.setdefault(p.password, p)
        limit = max(MIN_CANDIDATES, HASH_BUDGET // max(1, cost))
        return list(out.values())[:limit]

    def crack(self, user: str, hash_value: str) -> DefaultPair | None:
        """The default pair whose password produces ``hash_value``, if any."""
        key = (user, hash_value)
        if key in self._cache:
            return self._cache[key]
        result = self._crack(user, hash_value)
        self._cache[key] = result
        return result

    def _crack(self, user: str, hash_value: str) -> DefaultPair | None:
        scheme = identify(hash_value)
        if scheme is None or self._crypt is None:
            return None
        cands = self.candidates(user, scheme.cost)
        crypt = self._crypt
        if scheme.cost < 20 or self.workers == 1:  # cheap schemes: threads cost more than they save
            return next((c for c in cands if crypt.verify(c.password, hash_value)), None)
        with ThreadPoolExecutor(self.workers) as pool:
            for cand, ok in zip(
                cands, pool.map(lambda c: crypt.verify(c.password, hash_value), cands), strict=True
            ):
                if ok:
                    return cand
        return None

    def crack_with(self, user: str, check: object, kind: str) -> DefaultPair | None:
        """Like :meth:`crack` for non-crypt formats; ``check(password) -> bool``."""
        key = (user, kind)
        if key in self._cache:
            return self._cache[key]
        result = next((c for c in self.candidates(user, 1) if check(c.password)), None)  # type: ignore[operator]
        self._cache[key] = result
        return result


# ---- shared reporting ------------------------------------------------------------------------


def _pw_extra(ctx: ScanContext, pair: DefaultPair, user: str) -> dict[str, str]:
    extra = {"account": user, "list_source": pair.source}
    if not ctx.options.redact:
        extra["password"] = pair.password
    return extra


def _default_pw_finding(
    ctx: ScanContext,
    entry: FileEntry,
    line: int,
    user: str,
    what: str,
    pair: DefaultPair,
    hash_value: str,
    severity: Severity,
) -> Finding:
    shown = "(redacted)" if ctx.options.redact else repr(pair.password)
    return finding(
        ctx,
        entry,
        rule_id="credentials.default-password",
        category=CAT,
        severity=severity,
        title=f"Default password for {what} '{user}'",
        cra=CRA_CREDENTIALS,
        line=line,
        evidence=f"{user}: {identify(hash_value).name if identify(hash_value) else 'hash'} matches the "
        f"well-known password {shown} ({pair.source})",
        remediation="Ship without a usable default password: force a unique password per device or at "
        "first setup, and lock accounts nobody logs into.",
        fp=fingerprint(f"{user}:{hash_value}"),
        extra=_pw_extra(ctx, pair, user),
    )


def _weak_hash_finding(
    ctx: ScanContext, entry: FileEntry, line: int, user: str, hash_value: str, scheme_name: str
) -> Finding:
    sev = Severity.HIGH if scheme_name in ("des-crypt", "lm", "plaintext") else Severity.MEDIUM
    return finding(
        ctx,
        entry,
        rule_id="credentials.weak-hash",
        category=CAT,
        severity=sev,
        title=f"Weak password hash scheme {scheme_name} for '{user}'",
        cra=CRA_CREDENTIALS,
        line=line,
        evidence=f"{user}: {scheme_name} hash ({fingerprint(hash_value)})",
        remediation="Store passwords with yescrypt, SHA-512-crypt or bcrypt (cost >= 10).",
        fp=fingerprint(f"{user}:{hash_value}"),
        extra={"account": user, "scheme": scheme_name},
    )


def _empty_pw_finding(
    ctx: ScanContext,
    entry: FileEntry,
    line: int,
    user: str,
    what: str,
    severity: Severity = Severity.CRITICAL,
) -> Finding:
    return finding(
        ctx,
        entry,
        rule_id="credentials.empty-password",
        category=CAT,
        severity=severity,
        title=f"{what} '{user}' has an empty password",
        cra=CRA_CREDENTIALS,
        line=line,
        evidence=f"{user}: password field is empty (login without a password)",
        remediation="Set a unique password per device at first setup, or lock the account ('*' or '!').",
        fp=fingerprint(f"{user}:empty"),
        extra={"account": user},
    )


# ---- /etc/passwd, /etc/shadow, /etc/group ------------------------------------------------------


@dataclass(frozen=True)
class Account:
    name: str
    password: str  # the effective password field (from shadow when passwd says x)
    uid: int | None
    shell: str
    entry: FileEntry  # the file the password field came from
    line: int
    passwd_entry: FileEntry
    passwd_line: int
    in_passwd: bool  # the hash lives in /etc/passwd itself


def _parse_colon_file(lines: list[str], min_fields: int) -> list[tuple[int, list[str]]]:
    out = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#") or line.startswith(("+", "-")):
            continue
        fields = line.split(":")
        if len(fields) >= min_fields:
            out.append((no, fields))
    return out


def _etc_root(path: str) -> str:
    return path.rsplit("/etc/", 1)[0]


class AccountFiles(Check):
    """passwd/shadow/group (glibc, busybox and OpenWrt use the same formats)."""

    name = "credentials.accounts"
    category = CAT

    def __init__(self, cracker: Cracker | None = None) -> None:
        self._cracker = cracker

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        data = load_data()
        cracker = self._cracker or Cracker(data, ctx.options.workers)
        if cracker.error:
            yield Finding(
                rule_id="credentials.backend-missing",
                category=CAT,
                severity=Severity.INFO,
                title="Default-password recovery skipped",
                cra_reference=CRA_CREDENTIALS,
                evidence=cracker.error,
                remediation="Install libcrypt1 (libxcrypt) and scan again.",
            )
        passwds = regular_files(ctx, ["*/etc/passwd"])
        shadows = {(e.layer_id, _etc_root(e.path)): e for e in regular_files(ctx, ["*/etc/shadow"])}
        for pw_entry in passwds:
            sh_entry = shadows.pop((pw_entry.layer_id, _etc_root(pw_entry.path)), None)
            yield from self._system(ctx, data, cracker, pw_entry, sh_entry)
        for sh_entry in shadows.values():  # a shadow without passwd: still check its hashes
            yield from self._system(ctx, data, cracker, None, sh_entry)
        for gr_entry in regular_files(ctx, ["*/etc/group", "*/etc/gshadow"]):
            yield from self._groups(ctx, cracker, gr_entry)

    def _system(
        self,
        ctx: ScanContext,
        data: CredentialData,
        cracker: Cracker,
        pw_entry: FileEntry | None,
        sh_entry: FileEntry | None,
    ) -> Iterator[Finding]:
        shadow: dict[str, tuple[int, str]] = {}
        if sh_entry is not None:
            for no, f in _parse_colon_file(text_lines(ctx, sh_entry), 2):
                shadow.setdefault(f[0], (no, f[1]))
        accounts: list[Account] = []
        if pw_entry is not None:
            for no, f in _parse_colon_file(text_lines(ctx, pw_entry), 7):
                name, field_pw = f[0], f[1]
                uid = int(f[2]) if f[2].strip().isdecimal() else None
                if field_pw == "x" and name in shadow and sh_entry is not None:
                    sno, spw = shadow[name]
                    accounts.append(Account(name, spw, uid, f[6].strip(), sh_entry, sno, pw_entry, no, False))
                elif field_pw == "x":
                    accounts.append(Account(name, "*", uid, f[6].strip(), pw_entry, no, pw_entry, no, False))
                else:
                    accounts.append(
                        Account(name, field_pw, uid, f[6].strip(), pw_entry, no, pw_entry, no, True)
                    )
        elif sh_entry is not None:
            for name, (sno, spw) in shadow.items():
                accounts.append(Account(name, spw, None, "", sh_entry, sno, sh_entry, sno, False))
        for acc in accounts:
            yield from self._account(ctx, data, cracker, acc)

    def _account(
        self, ctx: ScanContext, data: CredentialData, cracker: Cracker, acc: Account
    ) -> Iterator[Finding]:
        shell = os.path.basename(acc.shell)
        login_shell = shell in data.login_shells
        pw = acc.password
        locked = pw.startswith(data.locked_prefixes)
        if acc.uid == 0 and acc.name != "root":
            yield finding(
                ctx,
                acc.passwd_entry,
                rule_id="credentials.extra-uid0",
                category=CAT,
                severity=Severity.HIGH,
                title=f"Account '{acc.name}' has UID 0 (root rights)",
                cra=CRA_CREDENTIALS,
                line=acc.passwd_line,
                evidence=f"{acc.name}:UID 0, shell {acc.shell or '-'}",
                remediation="Remove the account or give it its own UID; use sudo/su for admin rights.",
                fp=fingerprint(f"uid0:{acc.name}"),
                extra={"account": acc.name},
            )
        is_service = acc.name != "root" and (
            acc.name in data.service_accounts
            or (acc.uid is not None and (1 <= acc.uid < 1000 or acc.uid == 65534))
        )
        if is_service and login_shell and acc.uid != 0:
            yield finding(
                ctx,
                acc.passwd_entry,
                rule_id="credentials.service-shell",
                category=CAT,
                severity=Severity.LOW if locked else Severity.MEDIUM,
                title=f"Service account '{acc.name}' has a login shell",
                cra=CRA_CREDENTIALS,
                line=acc.passwd_line,
                evidence=f"{acc.name}: UID {acc.uid}, shell {acc.shell}, password "
                f"{'locked' if locked else 'usable'}",
                remediation="Give service accounts /sbin/nologin (or /bin/false).",
                fp=fingerprint(f"shell:{acc.name}:{acc.shell}"),
                extra={"account": acc.name},
            )
        if pw == "":
            if shell in data.nologin_shells:
                sev = Severity.MEDIUM
            else:
                sev = Severity.CRITICAL
            yield _empty_pw_finding(ctx, acc.entry, acc.line, acc.name, "Account", sev)
            return
        if locked:
            return
        if acc.in_passwd:
            yield finding(
                ctx,
                acc.entry,
                rule_id="credentials.hash-in-passwd",
                category=CAT,
                severity=Severity.MEDIUM,
                title=f"Password hash of '{acc.name}' in world-readable passwd",
                cra=CRA_CREDENTIALS,
                line=acc.line,
                evidence=f"{acc.name}: hash in {acc.entry.path}",
                remediation="Move hashes to /etc/shadow (mode 0600/0640) and put 'x' in passwd.",
                fp=fingerprint(f"inpasswd:{acc.name}:{pw}"),
                extra={"account": acc.name},
            )
        scheme = identify(pw)
        if scheme is None:
            return
        if scheme.weak:
            yield _weak_hash_finding(ctx, acc.entry, acc.line, acc.name, pw, scheme.name)
        pair = cracker.crack(acc.name, pw)
        if pair is not None:
            sev = Severity.CRITICAL if (login_shell or acc.uid == 0) else Severity.HIGH
            yield _default_pw_finding(ctx, acc.entry, acc.line, acc.name, "account", pair, pw, sev)

    def _groups(self, ctx: ScanContext, cracker: Cracker, entry: FileEntry) -> Iterator[Finding]:
        for no, f in _parse_colon_file(text_lines(ctx, entry), 3):
            pw = f[1]
            scheme = identify(pw) if pw not in ("", "x", "*", "!") else None
            if scheme is None:
                continue
            if scheme.weak:
                yield _weak_hash_finding(ctx, entry, no, f"group {f[0]}", pw, scheme.name)
            pair = cracker.crack(f[0], pw)
            if pair is not None:
                yield _default_pw_finding(ctx, entry, no, f[0], "group", pair, pw, Severity.HIGH)


# ---- htpasswd, htdigest, busybox httpd.conf, lighttpd plain ----------------------------------


def _htpasswd_matches(password: str, stored: str) -> bool | None:
    """True/False for formats checked here; None when crypt(3) must decide."""
    if stored.startswith("{SHA}"):
        return base64.b64encode(hashlib.sha1(password.encode()).digest()).decode() == stored[5:]
    return None


class WebAuthFiles(Check):
    """htpasswd/htdigest files, lighttpd user files, busybox httpd.conf (path:user:pass)."""

    name = "credentials.web"
    category = CAT
    globs = [
        "*/.htpasswd",
        "*/htpasswd",
        "*.htpasswd",
        "*/lighttpd.user",
        "*/lighttpd-plain.user",
        "*.htdigest",
        "*/htdigest",
        "*/lighttpd-htdigest.user",
        "*/etc/httpd.conf",
        "*/passwd.boa",
        "*/boa/passwd",
        "*/mini_httpd.passwd",
        "*/mosquitto/passwd",
        "*/mosquitto/pwfile",
        "*/mosquitto.passwd",
        "*/mosquitto/password_file",
    ]

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        data = load_data()
        cracker = Cracker(data, ctx.options.workers)
        for entry in regular_files(ctx, self.globs):
            lines = text_lines(ctx, entry)
            if entry.name in ("httpd.conf",):
                yield from self._busybox_httpd(ctx, cracker, entry, lines)
            elif "digest" in entry.name:
                yield from self._htdigest(ctx, cracker, entry, lines)
            else:
                yield from self._htpasswd(
                    ctx, cracker, entry, lines, plain_ok=entry.name.startswith("lighttpd")
                )

    def _check_pw(
        self,
        ctx: ScanContext,
        cracker: Cracker,
        entry: FileEntry,
        no: int,
        user: str,
        stored: str,
        plain_ok: bool,
    ) -> Iterator[Finding]:
        if stored == "":
            yield _empty_pw_finding(ctx, entry, no, user, "Web user")
            return
        direct = _htpasswd_matches("", stored)
        scheme = identify(stored)
        if direct is not None:  # {SHA}: unsalted SHA-1
            yield _weak_hash_finding(ctx, entry, no, user, stored, "unsalted-sha1")
            pair = cracker.crack_with(user, lambda p: _htpasswd_matches(p, stored), f"sha:{stored}")
        elif scheme is not None:
            if scheme.weak:
                yield _weak_hash_finding(ctx, entry, no, user, stored, scheme.name)
            pair = cracker.crack(user, stored)
        elif plain_ok or not stored.startswith("$"):
            yield from _plaintext_finding(ctx, entry, no, user, stored, "web server password file")
            return
        else:
            return
        if pair is not None:
            yield _default_pw_finding(ctx, entry, no, user, "web user", pair, stored, Severity.CRITICAL)

    def _htpasswd(
        self, ctx: ScanContext, cracker: Cracker, entry: FileEntry, lines: list[str], plain_ok: bool
    ) -> Iterator[Finding]:
        for no, f in _parse_colon_file(lines, 2):
            yield from self._check_pw(ctx, cracker, entry, no, f[0], ":".join(f[1:]).strip(), plain_ok)

    def _htdigest(
        self, ctx: ScanContext, cracker: Cracker, entry: FileEntry, lines: list[str]
    ) -> Iterator[Finding]:
        for no, f in _parse_colon_file(lines, 3):
            user, realm, digest = f[0], f[1], f[2].strip().lower()
            if not re.fullmatch(r"[0-9a-f]{32}", digest):
                continue
            pair = cracker.crack_with(
                user,
                lambda p, u=user, r=realm, d=digest: hashlib.md5(f"{u}:{r}:{p}".encode()).hexdigest() == d,
                f"digest:{realm}:{digest}",
            )
            if pair is not None:
                yield _default_pw_finding(ctx, entry, no, user, "web user", pair, digest, Severity.CRITICAL)

    def _busybox_httpd(
        self, ctx: ScanContext, cracker: Cracker, entry: FileEntry, lines: list[str]
    ) -> Iterator[Finding]:
        # busybox httpd.conf auth lines: /path:user:password (password plain or $1$ crypt)
        for no, line in enumerate(lines, 1):
            m = re.match(r"^\s*(/[^:\s]*):([^:\s]+):(\S*)\s*$", line)
            if m:
                yield from self._check_pw(ctx, cracker, entry, no, m.group(2), m.group(3), plain_ok=True)


# ---- Samba smbpasswd -------------------------------------------------------------------------


class SambaPasswords(Check):
    """smbpasswd: user:uid:LM:NT:[flags]:LCT."""

    name = "credentials.samba"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        cracker = Cracker(load_data(), 1)
        for entry in regular_files(ctx, ["*/smbpasswd", "*/samba/private/smbpasswd"]):
            for no, f in _parse_colon_file(text_lines(ctx, entry), 6):
                user, lm, nt, flags = f[0], f[2].upper(), f[3].upper(), f[4]
                if "D" in flags:  # disabled account
                    continue
                if nt.startswith("NO PASSWORD") or "N" in flags.strip("[]"):
                    yield _empty_pw_finding(ctx, entry, no, user, "Samba user")
                    continue
                if re.fullmatch(r"[0-9A-F]{32}", lm):
                    yield _weak_hash_finding(ctx, entry, no, user, lm, "lm")
                if re.fullmatch(r"[0-9A-F]{32}", nt):
                    pair = cracker.crack_with(user, lambda p, n=nt: nt_hash(p) == n, f"nt:{nt}")
                    if pair is not None:
                        yield _default_pw_finding(ctx, entry, no, user, "Samba user", pair, nt, Severity.HIGH)


# ---- OpenWrt /etc/config (rpcd logins) -------------------------------------------------------


class OpenWrtLogins(Check):
    """rpcd ``config login`` sections: plaintext or crypt passwords (``$p$user`` defers to shadow)."""

    name = "credentials.openwrt"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        cracker = Cracker(load_data(), ctx.options.workers)
        for entry in regular_files(ctx, ["*/etc/config/rpcd", "*/etc/config/uhttpd", "*/etc/config/luci"]):
            for _no, kind, opts in parse_uci(text_lines(ctx, entry)):
                if kind != "login" or "password" not in opts:
                    continue
                user, pw = opts.get("username", "?"), opts["password"]
                line = int(opts.get("_line_password", opts["_line"]))
                if pw.startswith("$p$"):
                    continue
                if pw == "":
                    yield _empty_pw_finding(ctx, entry, line, user, "rpcd login")
                    continue
                scheme = identify(pw)
                if scheme is None:
                    yield from _plaintext_finding(ctx, entry, line, user, pw, "rpcd login")
                    continue
                if scheme.weak:
                    yield _weak_hash_finding(ctx, entry, line, user, pw, scheme.name)
                pair = cracker.crack(user, pw)
                if pair is not None:
                    yield _default_pw_finding(
                        ctx, entry, line, user, "rpcd login", pair, pw, Severity.CRITICAL
                    )


# ---- plaintext credentials in scripts and configs ---------------------------------------------


def _plaintext_finding(
    ctx: ScanContext,
    entry: FileEntry,
    line: int,
    user: str,
    value: str,
    what: str,
    severity: Severity = Severity.HIGH,
    rule: str = "",
    title: str = "",
    note: str = "",
    remediation: str = "",
    more: dict[str, str] | None = None,
) -> Iterator[Finding]:
    shown = value if ctx.options.show_secrets else f"<redacted {fingerprint(value)}>"
    extra = {"rule": rule} if rule else {}
    if user:
        extra["account"] = user
    extra.update(more or {})
    if ctx.options.show_secrets:
        extra["secret"] = value
    yield finding(
        ctx,
        entry,
        rule_id="credentials.plaintext",
        category=CAT,
        severity=severity,
        title=title or f"Plaintext password in {what}",
        cra=CRA_CREDENTIALS,
        line=line,
        evidence=f"{user + ': ' if user else ''}{shown}{' (' + note + ')' if note else ''}",
        remediation=remediation
        or "Do not ship passwords in files: generate per-device secrets at first boot or "
        "store only salted hashes.",
        fp=fingerprint(value),
        extra=extra,
    )


_SKIP_DIRS = ("/usr/share/doc/", "/usr/share/man/", "/usr/share/info/", "/usr/include/", "/usr/share/locale/")
_TEXT_KINDS = {FileKind.SCRIPT, FileKind.CONFIG}


def plaintext_candidates(ctx: ScanContext) -> list[FileEntry]:
    """Scripts and configs worth scanning for literal passwords (and tokens)."""
    out = []
    for e in ctx.files:
        if e.kind in _TEXT_KINDS or (e.kind == FileKind.DATA and "/etc/" in e.path and e.size < 256 * 1024):
            if e.size <= 1024 * 1024 and not any(d in e.path for d in _SKIP_DIRS):
                out.append(e)
    return out


class PlaintextCredentials(Check):
    """Literal passwords in scripts and configs (rules in signatures/credentials/plaintext.toml)."""

    name = "credentials.plaintext"
    category = CAT

    def run(self, ctx: ScanContext) -> Iterator[Finding]:
        data = load_data()
        for entry in plaintext_candidates(ctx):
            lines = text_lines(ctx, entry, 1024 * 1024)
            if not lines:
                continue
            yield from scan_plaintext(ctx, entry, lines, data)


def scan_plaintext(
    ctx: ScanContext, entry: FileEntry, lines: list[str], data: CredentialData
) -> Iterator[Finding]:
    seen: set[tuple[int, str]] = set()
    for no, text in logical_lines(lines):
        stripped = text.lstrip()
        if stripped.startswith(("#", "//", ";")) or len(text) > 4000:
            continue
        for rule_id, desc, rx, sev in data.plaintext_rules:
            for m in rx.finditer(text):
                groups = m.groupdict()
                key = next((k for k, v in sorted(groups.items()) if k.startswith("value") and v), "")
                value = groups.get(key) or ""
                if not _plausible(value, data):
                    continue
                if key == "value3" and _looks_like_code(value, text[m.end(key) :]):
                    continue
                if key == "value3" and value.endswith((",", ";")) and value[:-1].isidentifier():
                    continue  # `password = pass,` in a Lua/JS table: a variable
                if (no, value) in seen:
                    continue
                seen.add((no, value))
                yield from _plaintext_finding(
                    ctx, entry, no, groups.get("user") or "", value, desc, sev, rule_id
                )


_IDENT_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def _looks_like_code(value: str, rest: str) -> bool:
    """An unquoted value that is an expression: a call, or a property path (obj.field)."""
    return rest.lstrip().startswith("(") or _IDENT_PATH.fullmatch(value) is not None


def _plausible(value: str, data: CredentialData) -> bool:
    v = value.strip().strip(",;")
    if len(v) < data.min_length or v.lower() in data.ignore_values:
        return False
    if v.startswith(("$", "%", "@", "<", "{", "`", "/", "./", "http")) or "${" in v or "$(" in v:
        return False
    if set(v) <= set("*x.#?-_") or v.isupper() and "_" in v:  # masks and CONSTANT_NAMES
        return False
    if v[0] == v[-1] and not v[0].isalnum():  # template markers: _x_, %x%, @x@
        return False
    return True
