"""The block layer: attention blocks (one file each), their registry, how they start inside a
trained model, and the user's own blocks (``plugins``). Light to import: a built-in block's module
is imported when its name is first used or when the registry is read (``plugins.registered``)."""

from __future__ import annotations

import importlib

BUILTIN = {'SE': 'se', 'CBAM': 'cbam', 'ChannelAttention': 'cbam', 'SpatialAttention': 'cbam', 'ECA': 'eca',
           'CoordAtt': 'coord', 'SimAM': 'simam'}

__all__ = list(BUILTIN)


def import_builtins() -> None:
    """Import (and so register) every built-in block."""
    for module in dict.fromkeys(BUILTIN.values()):
        importlib.import_module(f'.{module}', __name__)


def __getattr__(name):
    if name not in BUILTIN:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(f'.{BUILTIN[name]}', __name__), name)
