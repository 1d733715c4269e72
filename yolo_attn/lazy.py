"""A package's public names, imported from their submodules on first use (PEP 562)."""

from __future__ import annotations

import importlib


def names_from(package: str, where: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``where`` maps each public name to its submodule."""

    def __getattr__(name):
        if name not in where:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(f'.{where[name]}', package), name)

    return __getattr__
