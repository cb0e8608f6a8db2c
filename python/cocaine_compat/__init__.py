"""Fallback ``cocaine`` package: the worker side of the Cocaine v1 worker protocol.

This package is imported as ``cocaine`` only when no real ``cocaine`` distribution is
installed. ``install_fallback()`` appends a finder to the *end* of ``sys.meta_path``; the
normal path finders run first, so an installed PyPI ``cocaine`` always wins and nothing of
it is overwritten. The installed wheel runs ``install_fallback()`` at interpreter start
through ``elliptics-cocaine-fallback.pth``. Set ``ELLIPTICS_COCAINE_FALLBACK=0`` to disable.
"""

import importlib.abc
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class _FallbackFinder(importlib.abc.MetaPathFinder):
    """Resolves top-level ``cocaine`` to this directory; submodules follow its ``__path__``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "cocaine":
            return None
        return importlib.util.spec_from_file_location(
            "cocaine", os.path.join(_HERE, "__init__.py"), submodule_search_locations=[_HERE])


def install_fallback() -> None:
    if os.environ.get("ELLIPTICS_COCAINE_FALLBACK", "1") == "0":
        return
    if not any(isinstance(f, _FallbackFinder) for f in sys.meta_path):
        sys.meta_path.append(_FallbackFinder())
