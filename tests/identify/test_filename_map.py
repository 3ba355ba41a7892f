"""File names that hold a library version, not a release: the ``filename_map`` table of a signature.

libfreetype.so.6.18.3 is FreeType 2.12.1, libhogweed.so.6.6 is Nettle 3.8.1, libffi.so.8.1.2 is
libffi 3.4.4: the signature's table says so.  A library version the table does not list names the
component without claiming any release."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cra_fw.errors import SignatureDataError
from cra_fw.identify import identify
from cra_fw.identify.matcher import Matcher
from cra_fw.identify.signatures import SignatureSet, default_signatures, load_signatures, parse_signature
from tests.identify.treectx import tree_context

SIGS = default_signatures()
MATCHER = Matcher(SIGS)
LIBDIR = "/usr/lib/x86_64-linux-gnu/"


def _hits(name: str) -> list[tuple[str, str, str]]:
    # the filename route reads no content: an empty file body is enough for the matcher
    return [(h.name, h.version, h.method) for h in MATCHER.scan(b"", LIBDIR + name)]


@pytest.mark.parametrize(
    "name, component, release",
    [
        ("libfreetype.so.6.18.3", "freetype", "2.12.1"),
        ("libfreetype.so.6.17.4", "freetype", "2.10.4"),
        ("libfreetype.so.6.20.2", "freetype", "2.13.3"),
        ("libfreetype.so.6.10.1", "freetype", "2.4.12"),  # older table, still one release per number
        ("libnettle.so.8.6", "nettle", "3.8.1"),
        ("libhogweed.so.6.6", "nettle", "3.8.1"),
        ("libnettle.so.8.10", "nettle", "3.10.1"),
        ("libnettle.so.8.1", "nettle", "3.7"),  # 8.1 vs 8.10: the whole capture is the key, no prefix match
        ("libhogweed.so.4.5", "nettle", "3.4.1"),
        ("libffi.so.7.1.0", "libffi", "3.3"),
        ("libffi.so.8.1.2", "libffi", "3.4.4"),
        ("libxml2.so.2.9.14", "libxml2", "2.9.14"),  # no map: the file name is the release
        ("libxml2.so.2.9.10", "libxml2", "2.9.10"),
    ],
)
def test_mapped_library_version_gives_the_exact_release(name, component, release):
    assert _hits(name) == [(component, release, "filename")]


def test_the_evidence_says_how_the_release_was_derived():
    (hit,) = MATCHER.scan(b"", LIBDIR + "libfreetype.so.6.18.3")
    assert hit.detail == "libfreetype.so.6.18.3 (library version 6.18.3 = release 2.12.1)"
    (plain,) = MATCHER.scan(b"", LIBDIR + "libxml2.so.2.9.14")
    assert plain.detail == "libxml2.so.2.9.14"


@pytest.mark.parametrize(
    "name, component",
    [
        ("libffi.so.8.1.4", "libffi"),  # 3.4.6..3.4.8 may share it (Debian trixie ships it for 3.4.8)
        ("libffi.so.8.1.3", "libffi"),
        ("libfreetype.so.6.3.18", "freetype"),  # FreeType 2.3.7, before the table
        ("libfreetype.so.6.21.0", "freetype"),  # a release after the table
        ("libnettle.so.7.0", "nettle"),  # shared by 3.5 and 3.5.1
        ("libhogweed.so.5.0", "nettle"),
        ("libhogweed.so.2.1", "nettle"),  # shared by 2.2, 2.3 and 2.4
    ],
)
def test_unmapped_library_version_names_the_component_without_a_version(name, component):
    (hit,) = MATCHER.scan(b"", LIBDIR + name)
    assert (hit.name, hit.version, hit.method) == (component, "", "filename")
    assert "maps to no single release" in hit.detail


@pytest.mark.parametrize(
    "name",
    [
        "libfreetype.so.6",
        "libffi.so.8",
        "libnettle.so.8",
        "libhogweed.so.6",
        "libxml2.so.2",  # SONAME links
        "libxml2.so.16.0.5",  # libxml2 >= 2.14: the file name no longer holds the release
        "libfreetype.so",
        "libfreetype.so.6.18.3.bak",
        "libfontconfig.so.1.12.0",
        "xmllint",
    ],
)
def test_names_without_a_full_library_version_give_no_filename_hit(name):
    assert _hits(name) == []


def test_signature_without_a_map_keeps_the_captured_value():
    assert _hits("libtommath.so.1.2.0") == [("libtommath", "1.2.0", "filename")]
    sig = parse_signature(
        {
            "name": "x",
            "cpe": "a:b",
            "purl": "pkg:generic/x@{version}",
            "supplier": "s",
            "filename": [r"libx\.so\.(?P<version>\d+\.\d+)"],
        },
        "t",
    )
    assert sig.filename_map == () and sig.release_for_filename("1.2") == "1.2"


def test_a_captured_value_is_looked_up_whole():
    sig = parse_signature(
        {
            "name": "x",
            "cpe": "a:b",
            "purl": "pkg:generic/x@{version}",
            "supplier": "s",
            "filename": [r"libx\.so\.(?P<version>\d+\.\d+)"],
            "filename_map": {"8.1": "3.7", "8.10": "3.10.1"},
        },
        "t",
    )
    matcher = Matcher(SignatureSet((sig,), "d"))
    assert [(h.version) for h in matcher.scan(b"", "/lib/libx.so.8.1")] == ["3.7"]
    assert [(h.version) for h in matcher.scan(b"", "/lib/libx.so.8.10")] == ["3.10.1"]
    assert [(h.version) for h in matcher.scan(b"", "/lib/libx.so.8.2")] == [""]


def test_shipped_maps_are_one_to_one():
    """Each library version maps to one release (TOML keys are unique) and no release appears under
    two versions of the same library: an ambiguous number is left out, never guessed."""
    mapped = [s for s in SIGS.signatures if s.filename_map]
    assert {s.name for s in mapped} >= {"freetype", "nettle", "libffi"}
    for sig in mapped:
        seen: dict[tuple[str, str], str] = {}
        for value, release in sig.filename_map:
            library = re.sub(r"[\d.]+$", "", value)  # "libnettle.so.", "libhogweed.so." or "" (one library)
            assert (library, release) not in seen, (
                f"{sig.name}: {value} and {seen[(library, release)]} -> {release}"
            )
            seen[(library, release)] = value
    nettle = dict(SIGS.by_name()["nettle"].filename_map)
    for shared in ("libnettle.so.7.0", "libhogweed.so.5.0", "libhogweed.so.2.1"):
        assert shared not in nettle
    assert "8.1.4" not in dict(SIGS.by_name()["libffi"].filename_map)


_GOOD = (
    'name = "x"\ncpe = "a:b"\npurl = "pkg:generic/x@{version}"\nsupplier = "s"\n'
    "filename = ['libx\\.so\\.(?P<version>\\d+\\.\\d+\\.\\d+)']\n"
)


@pytest.mark.parametrize(
    "table, why",
    [
        ('[filename_map]\n"6.18.3" = 2\n', "release must be a version string"),
        ('[filename_map]\n6.18.3 = "2.12.1"\n', "quote keys that contain dots"),  # TOML reads 6 -> 18 -> 3
        ('[filename_map]\n"6.18.3" = "2.12 .1"\n', "release must be a version string"),
        ('[filename_map]\n"6.18.3" = ""\n', "release must be a version string"),
        ('[filename_map]\n"6.18.3" = "2.12.1\\n"\n', "release must be a version string"),
        ("[filename_map]\n", "non-empty table"),
        ('filename_map = "6.18.3=2.12.1"\n', "non-empty table"),
        ('filename_map = ["6.18.3", "2.12.1"]\n', "non-empty table"),
    ],
)
def test_loader_rejects_a_malformed_map_naming_the_file(tmp_path, table, why):
    (tmp_path / "broken.toml").write_text(_GOOD + table)
    with pytest.raises(SignatureDataError, match=why) as err:
        load_signatures(tmp_path)
    assert "broken.toml" in str(err.value)


def test_loader_rejects_a_map_without_a_filename_regex(tmp_path):
    (tmp_path / "nomatch.toml").write_text(
        'name = "x"\ncpe = "a:b"\npurl = "pkg:generic/x@{version}"\nsupplier = "s"\n'
        '[[pattern]]\nanchor = "abcd"\nregex = "abcd(?P<version>\\\\d+)"\n[filename_map]\n"1.0.0" = "1.0"\n'
    )
    with pytest.raises(SignatureDataError, match="nomatch.toml: filename_map maps what a 'filename' regex"):
        load_signatures(tmp_path)


def test_loader_accepts_a_good_map_and_empty_positive_versions_only_with_it(tmp_path):
    (tmp_path / "ok.toml").write_text(
        _GOOD + '[filename_map]\n"6.18.3" = "2.12.1"\n'
        "[[vector]]\ntext = ''\nversion = ''\nsource = 's'\npath = '/lib/libx.so.6.3.18'\n"
    )
    (sig,) = load_signatures(tmp_path).signatures
    assert sig.filename_map == (("6.18.3", "2.12.1"),) and sig.vectors[0].version == ""
    (tmp_path / "ok.toml").write_text(
        _GOOD + "[[vector]]\ntext = ''\nversion = ''\nsource = 's'\npath = '/l'\n"
    )
    with pytest.raises(SignatureDataError, match="ok.toml: vector 1: field 'version' must be"):
        load_signatures(tmp_path)


# --- the identify stage on a tree holding the real Debian libraries ---------------------------------

_HOST = Path("/usr/lib/x86_64-linux-gnu")
_REAL = [
    "libfreetype.so.6.18.3",
    "libnettle.so.8.6",
    "libhogweed.so.6.6",
    "libffi.so.8.1.2",
    "libxml2.so.2.9.14",
]


@pytest.fixture()
def bookworm_libs(tmp_path) -> Path:
    """This machine's real bookworm libraries (libfreetype6, libnettle8, libhogweed6, libffi8, libxml2),
    laid out as a firmware rootfs with their SONAME links."""
    missing = [n for n in _REAL if not (_HOST / n).is_file()]
    if missing:
        pytest.skip(f"needs a Debian bookworm amd64 host with {', '.join(missing)}")
    root = tmp_path / "root"
    lib = root / "usr/lib"
    lib.mkdir(parents=True)
    for name in _REAL:
        shutil.copyfile(_HOST / name, lib / name)
        soname = re.match(r"(lib\w+\.so\.\d+)", name).group(1)
        (lib / soname).symlink_to(name)
    return root


def test_identify_stage_lists_each_library_once_with_its_release(bookworm_libs):
    result = identify(tree_context(bookworm_libs), use_cache=False)
    got = {(c.name, c.version, c.cpe) for c in result.components}
    assert got == {
        ("freetype", "2.12.1", "cpe:2.3:a:freetype:freetype:2.12.1:*:*:*:*:*:*:*"),
        ("nettle", "3.8.1", "cpe:2.3:a:nettle_project:nettle:3.8.1:*:*:*:*:*:*:*"),
        ("libffi", "3.4.4", "cpe:2.3:a:libffi_project:libffi:3.4.4:*:*:*:*:*:*:*"),
        ("libxml2", "2.9.14", "cpe:2.3:a:xmlsoft:libxml2:2.9.14:*:*:*:*:*:*:*"),
    }
    by_name = {c.name: c for c in result.components}
    # libnettle and libhogweed are one component, found in both files
    assert by_name["nettle"].files == (
        "rootfs:/usr/lib/libhogweed.so.6.6",
        "rootfs:/usr/lib/libnettle.so.8.6",
    )
    assert by_name["freetype"].purl == "pkg:generic/freetype@2.12.1"
    ev = by_name["freetype"].evidence
    assert [(e.method, e.path) for e in ev] == [("filename", "/usr/lib/libfreetype.so.6.18.3")]
    assert "= release 2.12.1" in ev[0].detail
    assert len(by_name["libffi"].hashes["SHA-512"]) == 128


def test_identify_stage_lists_an_unmapped_library_without_version_or_cpe(bookworm_libs):
    # Debian trixie's libffi 3.4.8 installs libffi.so.8.1.4, a number 3.4.6 and 3.4.7 may share.
    # The bytes are the host's real libffi; only the file name matters to this route.
    lib = bookworm_libs / "usr/lib"
    (lib / "libffi.so.8").unlink()
    (lib / "libffi.so.8.1.2").rename(lib / "libffi.so.8.1.4")
    (lib / "libffi.so.8").symlink_to("libffi.so.8.1.4")
    result = identify(tree_context(bookworm_libs), use_cache=False)
    ffi = [c for c in result.components if c.name == "libffi"]
    assert [(c.version, c.cpe, c.purl) for c in ffi] == [("", "", "pkg:generic/libffi")]
    assert [e.method for e in ffi[0].evidence] == ["filename"]
    assert "8.1.4 maps to no single release" in ffi[0].evidence[0].detail
    # the other libraries keep their releases
    assert {(c.name, c.version) for c in result.components if c.name != "libffi"} == {
        ("freetype", "2.12.1"),
        ("nettle", "3.8.1"),
        ("libxml2", "2.9.14"),
    }


def test_identify_stage_names_a_library_stored_under_its_soname_without_a_version(bookworm_libs):
    # firmware often ships the library under its SONAME alone: no library version, so no release
    lib = bookworm_libs / "usr/lib"
    for soname, name in (
        ("libfreetype.so.6", "libfreetype.so.6.18.3"),
        ("libxml2.so.2", "libxml2.so.2.9.14"),
    ):
        (lib / soname).unlink()
        (lib / name).rename(lib / soname)
    result = identify(tree_context(bookworm_libs), use_cache=False)
    got = {
        (c.name, c.version, c.cpe): [e.method for e in c.evidence]
        for c in result.components
        if c.name in ("freetype", "libxml2")
    }
    assert got == {("freetype", "", ""): ["soname"], ("libxml2", "", ""): ["soname"]}
