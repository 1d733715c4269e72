"""Result files written whole or not at all.

``write_json`` writes a temporary file in the destination folder, flushes it and ``os.replace``s
it over the destination (atomic): a reader or an interrupted run finds the old or the new complete
file. A failed write leaves the old file and becomes one ``OutputError`` line.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError

FULL = {28: 'disk full', 27: 'file too large', 122: 'disk quota exceeded'}  # ENOSPC, EFBIG, EDQUOT


class OutputError(UserError):
    """A result file that could not be written (the previous version, if any, is kept)."""


def write_error(path, e: OSError) -> OutputError:
    """One line for a failed write: what, why, and that nothing earlier was lost."""
    why = FULL.get(e.errno) or e.strerror or type(e).__name__
    return OutputError(f'cannot write {path}: {why}; files written before it are kept, free space or choose '
                       f'another --project and run again')


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file + fsync + rename)."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the usual mode
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise write_error(path, e) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def write_json(path, obj, **kwargs) -> None:
    """``json.dumps(obj)`` written atomically (``indent=2`` unless given)."""
    kwargs.setdefault('indent', 2)
    write_text(path, json.dumps(obj, **kwargs))


def save_npy(path, array) -> None:
    """``np.save`` whose failure (disk full, ...) is one ``OutputError`` line."""
    import numpy as np
    try:
        np.save(path, array)
    except OSError as e:
        raise write_error(path, e) from None
