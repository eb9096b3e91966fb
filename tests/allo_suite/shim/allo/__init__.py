"""``import allo`` for the Allo test-suite harness: Allo's names mapped onto allo_ext.

Used only by tests/allo_suite (put on sys.path by its runner); the mapping itself lives in
allo_ext.compat. Allo's library files (allo/library/*.py) are the vendored upstream ones, loaded
through allo_ext's Allo-syntax source loader."""
import os as _os

from allo_ext.compat import *  # noqa: F401,F403
from allo_ext.compat import __getattr__  # noqa: F401
from allo_ext.lang.source import AlloSourceFinder as _Finder

from . import backend, dsl, ir, template  # noqa: F401

_UP = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))), "upstream")
# ALLO_SOURCE_ROOTS: more directories whose modules are Allo-syntax (e.g. `allo-ext upstream` output)
_Finder(roots=[_os.path.join(_UP, "tests")] + [r for r in _os.environ.get("ALLO_SOURCE_ROOTS", "").split(_os.pathsep) if r],
        packages={"allo.library": _os.path.join(_UP, "allo", "library")}).install()
