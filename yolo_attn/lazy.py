"""A package's public names imported on first use (PEP 562), so that importing one light module of
the package -- the CLI's flag definitions -- does not run the heavy ones through its ``__init__``
(torch, pytorch-grad-cam with scikit-learn and scipy, OpenCV: seconds).

``__all__ = export(__name__, {'submodule': ('name', ...), ...})`` in a package's ``__init__``:
``from package import name`` imports ``package.submodule`` on first use and keeps the value, as an
eager ``from .submodule import name`` would have bound it. A name spelled like a submodule
(``yolo_attn.heatmaps.run``, the function, beside the module of that name) stays the exported
object: the import system sets every submodule it loads as an attribute of its package, which
would otherwise replace the name with the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


class LazyPackage(types.ModuleType):
    """A package whose ``_exports`` (``{name: submodule}``) are imported when first read."""

    def __getattr__(self, name):  # only called when the name is not bound yet
        where = self.__dict__.get('_exports', {}).get(name)
        if where is None:  # a submodule read as an attribute, as an eager __init__ would have bound it
            if not name.startswith('_') and importlib.util.find_spec(f'{self.__name__}.{name}') is not None:
                return importlib.import_module(f'{self.__name__}.{name}')
            raise AttributeError(f'module {self.__name__!r} has no attribute {name!r}')
        value = getattr(importlib.import_module(f'{self.__name__}.{where}'), name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name, value):
        if (isinstance(value, types.ModuleType) and value.__name__ == f'{self.__name__}.{name}'
                and name in self.__dict__.get('_exports', {})):
            return  # the submodule of an exported name's spelling: reached through sys.modules
        super().__setattr__(name, value)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.__dict__.get('_exports', {})))


def export(package: str, names: dict[str, tuple[str, ...]]) -> list[str]:
    """Make ``package`` (a module already in ``sys.modules``) import ``names`` (``{submodule:
    (name, ...)}``) on first use; return the names, for ``__all__``."""
    module = sys.modules[package]
    module.__dict__['_exports'] = {name: where for where, group in names.items() for name in group}
    module.__class__ = LazyPackage
    return list(module.__dict__['_exports'])
