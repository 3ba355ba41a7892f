"""Version ordering for the schemes firmware uses.

Two comparators:

* ``debian``: dpkg's algorithm (epoch, upstream, revision; ``~`` sorts before
  everything, letters before non-letters), used for ``pkg:deb`` components and
  the OSV ``Debian``/``Ubuntu`` ecosystems.
* ``generic``: a token comparator that handles semver-ish versions, OpenSSL
  letter releases (``1.0.2k < 1.0.2u < 1.0.2za``), dropbear ``2022.83``, busybox,
  kernel release candidates (``5.10.0-rc1 < 5.10.0``), OpenSSH ``9.3p1`` and
  dates (``2023-01-05``).

In the generic scheme a version is split into number and letter runs.  At each
position: pre-release words (``rc``, ``alpha``...) < end of version < a letter
suffix (post-release) < a number.  Trailing zero components are ignored, so
``1.0 == 1.0.0``.
"""

from __future__ import annotations

import functools
import re

_PRE_WORDS = frozenset({"alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "cr", "test"})
_TOKEN = re.compile(r"\d+|[a-zA-Z]+")

# kinds, ordered
_PRE, _END, _LETTER, _NUM = 0, 1, 2, 3


@functools.lru_cache(maxsize=1 << 16)
def _tokens(version: str) -> tuple[tuple[int, int | str], ...]:
    # cached: matching compares the same few range bounds against many components
    out: list[tuple[int, int | str]] = []
    text = version.strip().lower()
    if text.startswith("v") and len(text) > 1 and text[1].isdigit():
        text = text[1:]
    for match in _TOKEN.finditer(text):
        tok = match.group(0)
        if tok.isdigit():
            out.append((_NUM, int(tok)))
        elif tok in _PRE_WORDS:
            # 6.8.0-rc1 == 6.8-rc1: zeros before a pre-release word carry nothing
            while len(out) > 1 and out[-1] == (_NUM, 0):
                out.pop()
            out.append((_PRE, tok))
        else:
            out.append((_LETTER, tok))
    # 1.0 == 1.0.0: drop trailing zero numbers
    while len(out) > 1 and out[-1] == (_NUM, 0):
        out.pop()
    return tuple(out)


@functools.lru_cache(maxsize=1 << 16)
def generic_key(version: str) -> tuple:
    """A sort key with the generic order: plain tuple comparison, so hot loops avoid pairwise calls.

    The end marker sorts above pre-release words and below letters and numbers; at
    one position both sides always have the same kind before their values are
    compared, so ints only meet ints and strings only meet strings.
    """
    return _tokens(version) + ((_END, 0),)


@functools.lru_cache(maxsize=1 << 16)
def sortable(version: str) -> str:
    """The generic order as a plain string, so SQLite can compare versions in an index scan.

    Each token is its kind digit plus a value: numbers zero-padded to 12 digits,
    words followed by ``!`` (below every letter, so ``z`` < ``za``).  String order
    of the results equals :func:`generic_compare` order.
    """
    parts = []
    for kind, value in generic_key(version):
        if kind == _NUM:
            parts.append(f"{kind}{min(int(value), 10**12 - 1):012d}")
        elif kind == _END:
            parts.append(str(kind))
        else:
            parts.append(f"{kind}{value}!")
    return "".join(parts)


def generic_compare(a: str, b: str) -> int:
    """Compare two versions in the generic scheme; -1, 0 or 1."""
    ka, kb = generic_key(a), generic_key(b)
    return (ka > kb) - (ka < kb)


def _dpkg_order(ch: str) -> int:
    if ch == "~":
        return -1
    if ch.isdigit():
        return 0
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _dpkg_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _dpkg_order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _dpkg_order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def _dpkg_split(version: str) -> tuple[int, str, str]:
    v = version.strip()
    epoch = 0
    if ":" in v:
        head, rest = v.split(":", 1)
        if head.isdigit():
            epoch, v = int(head), rest
    upstream, _, revision = v.rpartition("-") if "-" in v else (v, "", "")
    return epoch, upstream, revision


def debian_compare(a: str, b: str) -> int:
    """Compare two Debian package versions the way dpkg does; -1, 0 or 1."""
    ea, ua, ra = _dpkg_split(a)
    eb, ub, rb = _dpkg_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


# apk (Alpine): number{.number}[letter]{_suffix[number]}[~hash][-rN], per apk-package(5).
# Token kinds: a shorter version ends where the other goes on; which one is newer depends on
# what follows (a pre-release suffix makes it older, anything else newer), so kinds are ranked.
_APK_DIGIT, _APK_LETTER, _APK_SUFFIX, _APK_REVISION, _APK_END, _APK_INVALID = 1, 3, 4, 6, 7, 8
_APK_PRE = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3}
_APK_POST = {"cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_APK_TOKEN = re.compile(
    r"(?P<digit>\d+)|(?P<letter>[a-z](?![a-z]))|_(?P<suffix>[a-z]+)(?P<sufno>\d*)|~[0-9a-f]+|-r(?P<rev>\d+)|(?P<dot>\.)"
)


@functools.lru_cache(maxsize=1 << 14)
def _apk_tokens(version: str) -> tuple[tuple, ...]:
    """The tokens of an apk version; an unparsable rest ends in an invalid token (text order there)."""
    out: list[tuple] = []
    pos, first, after_dot = 0, True, False
    text = version.strip()
    while pos < len(text):
        m = _APK_TOKEN.match(text, pos)
        if m is None:
            return (*out, (_APK_INVALID, None))
        pos = m.end()
        if m.group("dot"):
            after_dot = True
            continue
        if m.group("digit") is not None:
            digits = m.group("digit")
            if not first and not after_dot:
                return (*out, (_APK_INVALID, None))  # "1a2": digits start the version or follow a dot
            # after a dot, a leading zero makes the part a fraction: compared as text ("02" < "1")
            value: object = digits if (not first and digits.startswith("0")) else int(digits)
            out.append((_APK_DIGIT, value))
        elif m.group("letter"):
            out.append((_APK_LETTER, m.group("letter")))
        elif m.group("suffix"):
            name = m.group("suffix")
            rank = _APK_PRE.get(name, _APK_POST.get(name))
            if rank is None:
                return (*out, (_APK_INVALID, None))
            out.append((_APK_SUFFIX, (rank, int(m.group("sufno") or 0))))
        elif m.group("rev") is not None:
            out.append((_APK_REVISION, int(m.group("rev"))))
        first, after_dot = False, False
    if after_dot or not out or out[0][0] != _APK_DIGIT:
        return (*out, (_APK_INVALID, None))
    return tuple(out)


def _apk_value_cmp(a: object, b: object) -> int:
    if isinstance(a, str) or isinstance(b, str):
        sa, sb = str(a), str(b)
        return (sa > sb) - (sa < sb)
    return (a > b) - (a < b)  # type: ignore[operator]


def apk_compare(a: str, b: str) -> int:
    """Compare two Alpine package versions the way apk does; -1, 0 or 1."""
    ta, tb = _apk_tokens(a), _apk_tokens(b)
    for i in range(max(len(ta), len(tb))):
        ka, va = ta[i] if i < len(ta) else (_APK_END, None)
        kb, vb = tb[i] if i < len(tb) else (_APK_END, None)
        if _APK_INVALID in (ka, kb):
            return (a > b) - (a < b)  # apk sorts what it cannot parse as text
        if ka == kb:
            if ka == _APK_END:
                return 0
            diff = _apk_value_cmp(va, vb)
            if diff:
                return diff
            continue
        # kinds differ: a pre-release suffix is older than whatever the other side has
        if ka == _APK_SUFFIX and va[0] < 4:
            return -1
        if kb == _APK_SUFFIX and vb[0] < 4:
            return 1
        return -1 if ka > kb else 1
    return 0


SCHEMES = {"generic": generic_compare, "debian": debian_compare, "apk": apk_compare}

# OSV ecosystems whose versions are Debian-style (opkg, OpenWrt's package manager, orders as dpkg)
_DEBIAN_ECOSYSTEMS = ("debian", "ubuntu", "openwrt", "opkg")
_APK_ECOSYSTEMS = ("alpine", "wolfi", "chainguard")


def scheme_for_ecosystem(ecosystem: str) -> str:
    """The comparator name for an OSV ecosystem ("Debian:12" -> "debian", "Alpine:v3.19" -> "apk")."""
    base = ecosystem.split(":", 1)[0].strip().lower()
    if base in _DEBIAN_ECOSYSTEMS:
        return "debian"
    return "apk" if base in _APK_ECOSYSTEMS else "generic"


def compare(a: str, b: str, scheme: str = "generic") -> int:
    """Compare two versions in a named scheme ("generic", "debian" or "apk")."""
    return SCHEMES.get(scheme, generic_compare)(a, b)


def sort_key(scheme: str = "generic"):
    """A key function for ``sorted`` in the given scheme."""
    return functools.cmp_to_key(SCHEMES.get(scheme, generic_compare))


def upstream_of_debian(version: str) -> str:
    """The upstream part of a Debian version: ``1:1.2.13.dfsg-1`` -> ``1.2.13``.

    Repack suffixes (``+dfsg``, ``.dfsg``, ``+ds``, ``~ds``) are dropped, so the
    result can be compared with upstream (NVD) versions.
    """
    _, upstream, _ = _dpkg_split(version)
    return re.sub(r"[.+~](dfsg|ds|repack|really.*|debian)\d*.*$", "", upstream)
