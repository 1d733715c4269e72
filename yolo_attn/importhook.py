"""Run a function right after a module is first imported, by anyone (a ``sys.meta_path`` finder).

The finder asks the other finders for the module's spec and wraps its loader, so the module
executes as usual and ``callback(module)`` runs as soon as it has: ``activate`` switches the plugin
on after ``yolov5``'s first import; ``install`` patches yolov5's second import name ``models.yolo``
when (and only if) yolov5 itself imports it.
"""

from __future__ import annotations

import importlib.abc
import sys


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, fullname, callback, accept):
        self.fullname, self.callback, self.accept = fullname, callback, accept

    def find_spec(self, fullname, path, target=None):
        if fullname != self.fullname:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _AfterImport) or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and self.accept(spec):
            spec.loader = _CallingLoader(spec.loader, self.callback)
        return spec


class _CallingLoader(importlib.abc.Loader):
    def __init__(self, loader, callback):
        self.loader, self.callback = loader, callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.callback(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self.loader, name)


def after_import(fullname: str, callback, accept=lambda spec: True) -> None:
    """Call ``callback(module)`` after ``fullname`` is next imported (once per name: idempotent);
    ``accept(spec)`` may decline a spec (e.g. a user's own module of the same name)."""
    if not any(isinstance(f, _AfterImport) and f.fullname == fullname for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(fullname, callback, accept))


def initializing(module) -> bool:
    """Whether ``module`` is still executing its first import (its import reached ours midway)."""
    return bool(getattr(getattr(module, '__spec__', None), '_initializing', False))


def when_imported(fullname: str, callback, fallback: str | None = None) -> None:
    """``callback(module)`` now if ``fullname`` is imported, else right after its first import. A module
    still initializing (it imported ours midway) is complete once ``fallback``, a module that imports
    it, has been imported: ``callback`` then runs after that one."""
    module = sys.modules.get(fullname)
    if module is None:
        after_import(fullname, callback)
    elif not initializing(module):
        callback(module)
    elif fallback is not None:
        when_imported(fallback, lambda _: callback(sys.modules[fullname]))
    else:
        import warnings
        warnings.warn(f'yolo-attn: {fullname} was still being imported when the plugin was switched on; '
                      f'import yolo_attn first', RuntimeWarning, stacklevel=2)
