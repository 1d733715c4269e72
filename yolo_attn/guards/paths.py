"""Path-like input and run folders.

``refuse_url``: a ``scheme://...`` value in a path flag is refused before yolov5 could download,
stream or contact it. ``claim_run_dir``: yolov5's ``increment_path`` naming, claimed with an atomic
``mkdir``, kept inside ``project``. ``walk_files``: symlinked folders followed once each (a link to
``.`` would make ``glob('**')`` recurse forever).
"""

from __future__ import annotations

import errno
import fnmatch
import glob as _glob
import itertools
import os
import re
from pathlib import Path

from ..errors import UserError

PROJECTS = {'heatmap': 'runs/heatmap', 'heatmap-eval': 'runs/heatmap-eval', 'heatmap-compare': 'runs/heatmap-compare',
            'demo': 'runs/demo'}  # each command's default --project (yolov5's scripts keep their own)
RUN_NAME = 'exp'  # --name: a new exp2, exp3, ... when taken (claim_run_dir)
_URL = re.compile(r'^\s*[A-Za-z][A-Za-z0-9+.\-]*://')


def is_url(value) -> bool:
    """``scheme://...``: a URL, stream or remote location (a Windows ``C:\\`` path is not one)."""
    return isinstance(value, (str, Path)) and bool(_URL.match(str(value)))


def refuse_url(value, flag: str):
    """``value`` unchanged, or a ``UserError`` naming ``flag`` if it is a URL."""
    if is_url(value):
        raise UserError(f'{flag} {value}: URLs and streams are not fetched (yolo-attn works offline); '
                        f'download it yourself and give the local path')
    return value


def refuse_urls(options: dict) -> None:
    """Refuse a URL in any string option (or list of strings) of a parsed command line."""
    for key, value in options.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            refuse_url(item, '--' + str(key).replace('_', '-'))


def _os_reason(e: OSError) -> str:
    return e.strerror or str(e)


def check_run_name(project, name) -> None:
    """``--name`` names a folder inside ``--project``: not empty or ``.``, not absolute, no ``..``."""
    name = str(name)
    if not name.strip() or not Path(name).parts or Path(name).is_absolute() or '..' in Path(name).parts:
        # Path('.').parts is empty: project/'.' is the project itself, and its "next free name"
        # (project2) a sibling outside it
        raise UserError(f'--name {name!r}: must be a folder name inside --project {project} '
                        f'(not ".", not absolute, no "..")')


def claim_run_dir(project, name, exist_ok: bool = False) -> Path:
    """Create and return a new run folder ``project/name`` (or ``name2``, ``name3``, ...).

    ``exist_ok`` reuses ``project/name`` only if it is an empty folder. Every failure (``name``
    leaving ``project``, ``project`` a file or read-only) is one ``UserError``."""
    project, name = Path(project), str(name)
    check_run_name(project, name)
    try:
        project.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f'--project {project}: a file is in the way (it must be a folder)') from None
    except OSError as e:
        raise UserError(f'--project {project}: cannot create it ({_os_reason(e)})') from None
    target = project / name
    if exist_ok:
        try:
            target.mkdir(parents=True)
            return target
        except FileExistsError:
            if not target.is_dir() or target.is_symlink():
                raise UserError(f'{target} is not a folder of its own (a file or a link); choose another --name') from None
            if not any(target.iterdir()):
                return target
            raise UserError(f'{target} already holds results and --exist-ok would write into it; choose another '
                            f'--name (without --exist-ok a new {name}2, {name}3, ... is made)') from None
        except OSError as e:
            raise UserError(f'cannot create run folder {target} ({_os_reason(e)})') from None
    for n in itertools.count(1):
        candidate = target if n == 1 else target.with_name(f'{target.name}{n}')
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            candidate.mkdir()  # atomic: fails if another run (or anything) took the name
            return candidate
        except FileExistsError:
            continue
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise UserError(f'--name {name}: {candidate.parent} is a file, not a folder') from None
            raise UserError(f'cannot create run folder {candidate} ({_os_reason(e)}); '
                            f'choose a writable --project') from None


def walk_files(root, pattern: str = '*'):
    """Sorted files under ``root`` whose name matches ``pattern``; each real folder is visited
    once (symlink loops end), hidden files and folders are skipped as ``glob`` skips them."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
        found += [os.path.join(dirpath, f) for f in filenames if not f.startswith('.') and fnmatch.fnmatch(f, pattern)]
    return sorted(found)


def loop_safe_glob(pattern, *, recursive=False, **kwargs):
    """``glob.glob`` for yolov5's modules: ``root/**/name-pattern`` with ``recursive=True`` walks
    with ``walk_files`` (symlink loops end); everything else is ``glob.glob`` itself."""
    head, sep, tail = str(pattern).partition(os.sep + '**' + os.sep)
    if recursive and sep and os.sep not in tail and '**' not in head and not _glob.has_magic(head):
        return walk_files(head, tail)
    return _glob.glob(pattern, recursive=recursive, **kwargs)
