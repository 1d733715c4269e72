"""User blocks from the user's own modules: ``--import``, ``YOLO_ATTN_IMPORTS``, entry points.

A block registers when its module is imported; nothing reads code from a YAML or a checkpoint. The
user names the modules (mmengine's ``custom_imports`` idea): ``yolo-attn --import a[,b]`` (added to
``YOLO_ATTN_IMPORTS``, so child processes inherit it), that variable, or the ``yolo_attn.blocks``
entry-point group (a module, or a class registered under the entry point's name). The working folder
goes first on ``sys.path``, as with ``python -m``. Imported blocks join the checkpoint allowlist.
Usage: docs/blocks.md, "Your own block".
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

from ..errors import UserError

ENV = 'YOLO_ATTN_IMPORTS'
ENTRY_POINT_GROUP = 'yolo_attn.blocks'


def split_names(*values: str | None) -> list[str]:
    """Module names from comma-separated strings, in order, each once (``'a,b', 'b,c'`` -> a, b, c)."""
    out = []
    for value in values:
        for name in (value or '').split(','):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def _working_folder_on_path() -> None:
    """Put the working folder first on ``sys.path`` (what ``python -m`` does), once."""
    cwd = os.getcwd()
    if not any(p in ('', cwd) or (p and Path(p).resolve() == Path(cwd).resolve()) for p in sys.path):
        sys.path.insert(0, cwd)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of a failed import (the user's own code)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f' ({frames[-1].filename}:{frames[-1].lineno})' if frames else ''


def import_module(name: str, source: str):
    """Import one user module; a missing or failing module is one ``UserError`` line naming ``source``."""
    if not all(part.isidentifier() for part in name.split('.')):
        raise UserError(f'{source}: {name!r} is not a module name (give e.g. myblocks or mypkg.blocks, '
                        f'a module importable from {os.getcwd()} or installed)')
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + '.')):
            raise UserError(f'{source}: no module named {name!r} in the working folder {os.getcwd()} or on '
                            f'sys.path; run from the folder that holds {name.split(".")[0]}.py, or install it') from None
        raise UserError(f'{source}: importing {name!r} failed: {type(e).__name__}: {e}{_where(e)}') from None
    except Exception as e:  # the user's module raised while running: say what and where, in one line
        raise UserError(f'{source}: importing {name!r} failed: {type(e).__name__}: {e}{_where(e)}') from None


def _entry_points() -> list:
    from importlib.metadata import entry_points
    eps = entry_points()
    if hasattr(eps, 'select'):
        return list(eps.select(group=ENTRY_POINT_GROUP))
    return list(eps.get(ENTRY_POINT_GROUP, []))  # Python 3.9


def load_entry_points() -> list[str]:
    """Load every ``yolo_attn.blocks`` entry point of the installed packages; return their names."""
    import torch.nn as nn

    from .registry import BLOCKS, register_block
    loaded = []
    for ep in _entry_points():
        where = f'entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})'
        try:
            obj = ep.load()
        except Exception as e:
            raise UserError(f'{where}: loading failed: {type(e).__name__}: {e}{_where(e)}') from None
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj not in BLOCKS.values():
            try:
                register_block(obj, name=ep.name)
            except (TypeError, ValueError) as e:
                raise UserError(f'{where}: {e}') from None
        loaded.append(ep.name)
    return loaded


_LOADED = []


def registered() -> dict:
    """Every block a YAML, checkpoint or flag may name: the built-ins, the installed entry points
    and the ``YOLO_ATTN_IMPORTS`` modules (loaded on the first call). The one way the package
    reads the registry, whatever the caller imported before."""
    from . import import_builtins
    from .registry import BLOCKS
    if not _LOADED:
        _LOADED.append(True)
        try:
            import_builtins()
            load_entry_points()
            import_user_modules()
        except BaseException:
            _LOADED.clear()
            raise
    return BLOCKS


def import_user_modules(imports=(), *, env: bool = True) -> list[str]:
    """Import ``imports`` (``--import`` values, each ``'a'`` or ``'a,b'``), then ``YOLO_ATTN_IMPORTS``'s
    modules; return their names. ``imports`` are added to ``YOLO_ATTN_IMPORTS`` for child processes.
    Idempotent; errors are ``UserError`` lines. Entry points are loaded by ``registered``."""
    flag = split_names(*([imports] if isinstance(imports, str) else imports))
    names = split_names(','.join(flag), os.environ.get(ENV) if env else None)
    if not names:
        return []
    if flag:
        os.environ[ENV] = ','.join(split_names(os.environ.get(ENV), ','.join(flag)))
    _working_folder_on_path()
    for name in names:
        import_module(name, f'--import {name}' if name in flag else f'{ENV}={os.environ.get(ENV)}')
    return names


__all__ = ['ENV', 'ENTRY_POINT_GROUP', 'import_user_modules', 'load_entry_points', 'registered', 'split_names']
