"""Each registry is one explicit tuple: every entry is usable, names are unique, nothing is registered twice."""

from __future__ import annotations

import pkgutil

import cra_fw.checks.services as services_pkg
import cra_fw.unpack.handlers as handlers_pkg
from cra_fw.bundles.interface import Verifier
from cra_fw.bundles.registry import VERIFIERS, names, verifier
from cra_fw.checks import CHECKS
from cra_fw.checks.interface import CATEGORIES, Check
from cra_fw.checks.services import SOURCES
from cra_fw.checks.services.base import Source
from cra_fw.unpack.handlers import NATIVE_HANDLERS
from cra_fw.unpack.native import NativeHandler


def _subclasses(base: type) -> set[type]:
    """cra-fw's concrete subclasses of ``base`` (shared intermediate bases have no name)."""
    found, todo = set(), [base]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return {c for c in found if c.__module__.startswith("cra_fw.") and getattr(c, "name", "x")}


def test_checks_have_unique_names_and_known_categories():
    assert len({c.name for c in CHECKS}) == len(CHECKS)
    assert all(c.name and c.category in CATEGORIES for c in CHECKS)
    assert _subclasses(Check) == set(CHECKS)


def test_every_service_source_is_listed_once():
    assert len(set(SOURCES)) == len(SOURCES)
    assert _subclasses(Source) == set(SOURCES)
    modules = {m.name for m in pkgutil.iter_modules(services_pkg.__path__)} - {"base", "data"}
    assert modules == {s.__module__.rsplit(".", 1)[1] for s in SOURCES}  # one module per source family


def test_verifiers_have_unique_names_and_lookup_works():
    assert len(names()) == len(VERIFIERS) == len(set(names()))
    assert all(verifier(cls.name) is cls for cls in VERIFIERS)
    assert verifier("no-such-format") is None
    assert _subclasses(Verifier) == set(VERIFIERS)


def test_native_handlers_are_listed_once_with_unique_names():
    classes = [type(h) for h in NATIVE_HANDLERS]
    assert len(set(classes)) == len(classes)
    assert len({h.name for h in NATIVE_HANDLERS}) == len(NATIVE_HANDLERS)
    assert all(h.name for h in NATIVE_HANDLERS)
    assert _subclasses(NativeHandler) == set(classes)
    # each handler in its own module of cra_fw.unpack.handlers (helpers may live there too)
    assert all(c.__module__.startswith(handlers_pkg.__name__ + ".") for c in classes)
