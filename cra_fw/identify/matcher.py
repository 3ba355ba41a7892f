"""One pass over a file's bytes for all signatures together.

Every pattern has a literal anchor.  All anchors go into one Aho-Corasick automaton
(pyahocorasick), or one alternation regex when that module is missing, so a file is
read and searched once whatever the number of signatures; the per-signature version
regex then runs only in a small window around each anchor occurrence.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict

from cra_fw.identify.records import Hit, Signature
from cra_fw.identify.signatures import SignatureSet

try:  # pragma: no cover - exercised by whichever branch is installed
    import ahocorasick as _ac
except ImportError:  # pragma: no cover
    _ac = None

MAX_HITS_PER_ANCHOR = 64  # bounds work on hostile files full of one anchor
_DETAIL_MAX = 120


class Matcher:
    """All content and filename patterns of a SignatureSet, compiled once."""

    def __init__(self, sigset: SignatureSet) -> None:
        self.sigset = sigset
        self.signatures: tuple[Signature, ...] = sigset.signatures
        # anchor text -> [(signature index, pattern index)]
        self._anchors: dict[str, list[tuple[int, int]]] = defaultdict(list)
        # anchorless patterns run over whole files, only for files their globs select
        self._whole: list[tuple[int, int]] = []
        for si, sig in enumerate(self.signatures):
            for pi, pat in enumerate(sig.patterns):
                if pat.anchor:
                    self._anchors[pat.anchor.decode("latin-1")].append((si, pi))
                else:
                    self._whole.append((si, pi))
        self._globbed = {si for si, sig in enumerate(self.signatures) if sig.files}
        self._automaton = None
        self._regex: re.Pattern[str] | None = None
        if not self._anchors:
            pass
        elif _ac is not None:
            automaton = _ac.Automaton()
            for anchor, targets in self._anchors.items():
                automaton.add_word(anchor, (len(anchor), tuple(targets)))
            automaton.make_automaton()
            self._automaton = automaton
        else:
            alternation = "|".join(re.escape(a) for a in sorted(self._anchors, key=len, reverse=True))
            self._regex = re.compile(alternation, re.DOTALL)

    def wants_path(self, path: str) -> bool:
        """True when some signature names this path in its file globs."""
        return any(fnmatch.fnmatchcase(path, g) for si in self._globbed for g in self.signatures[si].files)

    def _applies(self, si: int, path: str, cache: dict[int, bool]) -> bool:
        if si not in self._globbed:
            return True
        if si not in cache:
            cache[si] = any(fnmatch.fnmatchcase(path, g) for g in self.signatures[si].files)
        return cache[si]

    def _anchor_hits(self, text: str):
        if not self._anchors:
            return
        if self._automaton is not None:
            for end, (length, targets) in self._automaton.iter(text):
                yield end - length + 1, length, targets
        else:
            assert self._regex is not None
            for m in self._regex.finditer(text):
                yield m.start(), m.end() - m.start(), tuple(self._anchors[m.group()])

    def scan(self, data: bytes, path: str, static: bool = False) -> list[Hit]:
        """Signature hits in ``data`` (the contents of the file at ``path``), one per (name, version).

        ``static`` says the file is a statically linked ELF (enables marker patterns)."""
        found: dict[tuple[str, str], Hit] = {}
        markers: dict[str, tuple[tuple[int, ...], str, Signature]] = {}
        glob_cache: dict[int, bool] = {}
        counts: dict[tuple[int, int], int] = defaultdict(int)
        conditions: dict[tuple[int, int], bool] = {}
        text = data.decode("latin-1")
        for start, length, targets in self._anchor_hits(text):
            for si, pi in targets:
                if counts[(si, pi)] >= MAX_HITS_PER_ANCHOR or not self._applies(si, path, glob_cache):
                    continue
                counts[(si, pi)] += 1
                sig = self.signatures[si]
                pat = sig.patterns[pi]
                if pat.static_only and not static:
                    continue
                if (pat.requires or pat.unless) and not _conditions_hold(pat, data, conditions, (si, pi)):
                    continue
                if pat.versionless:
                    found.setdefault(
                        (sig.name, ""),
                        Hit(
                            sig.name,
                            "",
                            "symbol",
                            sig.confidence,
                            _printable(pat.anchor.decode("latin-1")).strip("."),
                            start,
                        ),
                    )
                    continue
                if pat.regex is None:  # marker: the newest one found gives the version
                    key_v = _vkey(pat.fixed_version)
                    if sig.name not in markers or key_v > markers[sig.name][0]:
                        markers[sig.name] = (key_v, pat.fixed_version, sig)
                    continue
                if pat.whole_file:
                    if counts[(si, pi)] > 1:
                        continue  # the whole file was searched at the first anchor
                    lo, window = 0, data
                else:
                    lo = max(0, start - pat.before)
                    window = data[lo : start + length + pat.after]
                m = pat.regex.search(window)
                if m is None:
                    continue
                version = pat.version_prefix + _version(m)
                key = (sig.name, version)
                if key not in found:
                    detail = m.group(0)[:_DETAIL_MAX].decode("latin-1")
                    found[key] = Hit(
                        sig.name, version, "signature", sig.confidence, _printable(detail), lo + m.start()
                    )
        for name, (_, version, sig) in markers.items():
            if not any(k[0] == name and k[1] for k in found):
                found[(name, version)] = Hit(
                    name,
                    version,
                    "symbol",
                    min(sig.confidence, 0.6),
                    f"statically linked; feature markers of {name} >= {version}",
                )
        for si, pi in self._whole:
            sig = self.signatures[si]
            if not self._applies(si, path, glob_cache):
                continue
            pat = sig.patterns[pi]
            if (pat.requires or pat.unless) and not _conditions_hold(pat, data, conditions, (si, pi)):
                continue
            regex = pat.regex
            m = regex.search(data) if regex is not None else None
            if m is not None:
                version = _version(m)
                found.setdefault(
                    (sig.name, version),
                    Hit(
                        sig.name,
                        version,
                        "signature",
                        min(sig.confidence, 0.8),
                        _printable(m.group(0)[:_DETAIL_MAX].decode("latin-1")),
                        m.start(),
                    ),
                )
        name = path.rsplit("/", 1)[-1]
        for sig in self.signatures:
            for rx in sig.filenames:
                fm = rx.fullmatch(name)
                if fm:
                    captured = fm.group("version")
                    # with a filename_map the capture is a library version: an unlisted one
                    # names the component but claims no release (never a guess)
                    version = sig.release_for_filename(captured)
                    key = (sig.name, version)
                    if key not in found:
                        found[key] = Hit(
                            sig.name,
                            version,
                            "filename",
                            min(sig.confidence, 0.7),
                            _filename_detail(sig, name, captured, version),
                        )
        versioned = {n for n, v in found if v}
        return [h for (n, v), h in found.items() if v or n not in versioned]


def _conditions_hold(pat, data: bytes, cache: dict[tuple[int, int], bool], key: tuple[int, int]) -> bool:
    """A pattern's file-level conditions, decided once per file."""
    if key not in cache:
        cache[key] = all(r in data for r in pat.requires) and not any(u in data for u in pat.unless)
    return cache[key]


def _filename_detail(sig: Signature, name: str, captured: str, version: str) -> str:
    if not sig.filename_map:
        return name
    if version:
        return f"{name} (library version {captured} = release {version})"
    return f"{name} (library version {captured} maps to no single release)"


def _printable(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "." for c in text)


def _version(m: re.Match[bytes]) -> str:
    from cra_fw.identify.kernel import best_version

    return best_version(m)


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))
