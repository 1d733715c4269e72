"""The block layer: attention blocks (one file each), their registry, how they start inside a
trained model, and the user's own blocks (``plugins``). Light to import: a built-in block's module
is imported when its name is first used or when the registry is read (``plugins.registered``)."""

from __future__ import annotations

import importlib

from ..lazy import names_from

BUILTIN = {'SE': 'se', 'CBAM': 'cbam', 'ChannelAttention': 'cbam', 'SpatialAttention': 'cbam', 'ECA': 'eca',
           'CoordAtt': 'coord', 'SimAM': 'simam'}

__all__ = list(BUILTIN)


def import_builtins() -> None:
    """Import (and so register) every built-in block."""
    for module in dict.fromkeys(BUILTIN.values()):
        importlib.import_module(f'.{module}', __name__)


__getattr__ = names_from(__name__, BUILTIN)
