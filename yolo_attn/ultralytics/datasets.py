"""ultralytics and the user's dataset, once yolo-attn is imported: no cache read or written, no download script run.

**Caches.** ultralytics keeps the scanned labels of a dataset in a ``*.cache`` file beside its label folder
(``labels/train.cache``) and reads one back with ``numpy.load(..., allow_pickle=True)``: a cache is a
pickle, and a pickle found in a dataset folder can run code when loaded. Both go through two
functions of ``ultralytics.data.utils``, replaced here for every caller (the dataset module binds
them by name): ``load_dataset_cache_file`` reads nothing and raises, which ultralytics' datasets
treat as "no cache yet" and scan the labels again (a second or so for thousands of files); and
``save_dataset_cache_file`` writes nothing, so the user's dataset folder stays as it was.

**Download scripts.** A data YAML's ``download:`` entry is run by ``check_det_dataset`` when the
split's images are missing: a URL fetched, a ``bash`` command or Python code (``exec``). The
wrapper asks it never to download (``autodownload=False``); missing images are one line. And
``cache=disk`` (an ``.npy`` beside every image) is refused in one line (``check_cache``).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from ..errors import UserError

LOGGER = logging.getLogger('ultralytics')


class DatasetError(UserError, ValueError):
    """Missing images (ultralytics would run the YAML's download script), or ``cache=disk``."""


class CacheNotRead(OSError):
    """What the replaced loader raises: ultralytics' datasets catch it and scan the labels instead."""


def load_dataset_cache_file(path) -> dict:
    if Path(path).exists():
        LOGGER.info(f'{path}: not read (a dataset cache is a pickle; yolo-attn unpickles none): labels scanned again')
    raise CacheNotRead(f'{path}: yolo-attn reads no dataset cache')


def save_dataset_cache_file(prefix: str, path, x: dict, version: str) -> None:
    x['version'] = version  # ultralytics' own adds it in place, and its callers read it back
    LOGGER.info(f'{prefix}labels scanned; no cache written to {path} (yolo-attn writes nothing into the dataset '
                f'folder)')


def check_cache(cfg: dict) -> None:
    """``cache=disk`` would write an ``.npy`` beside every image of the dataset: refused in one line
    (checked with ultralytics' own ``check_cfg``, ``attn_start.register_keys``)."""
    if cfg.get('cache') == 'disk':
        raise DatasetError("cache='disk' writes an .npy file beside every image of the dataset, and yolo-attn writes "
                           "nothing into your dataset folder: use cache=ram (or no cache)")


def check_det_dataset(dataset, autodownload: bool = True, split: str = ''):
    try:
        return check_det_dataset.__wrapped__(dataset, autodownload=False, split=split)
    except FileNotFoundError as e:
        raise DatasetError(f"{' '.join(str(e).split()).split(' Note dataset download directory')[0]} (yolo-attn "
                           f"downloads no dataset and runs no download script of a data YAML)") from None


OURS = {'load_dataset_cache_file': load_dataset_cache_file, 'save_dataset_cache_file': save_dataset_cache_file,
        'check_det_dataset': check_det_dataset}
for _fn in OURS.values():
    _fn._yolo_attn = True


def install() -> None:
    """Replace them in ``ultralytics.data.utils`` and wherever a loaded ultralytics module bound them by
    name (modules imported later bind ours); idempotent. When ``ultralytics.data.utils`` is still being
    imported (its import of ``ultralytics.nn`` reached the plugin), once ``ultralytics.data.dataset``,
    a caller, is imported."""
    from ..importhook import when_imported
    when_imported('ultralytics.data.utils', _replace, fallback='ultralytics.data.dataset')


def _replace(utils) -> None:
    for name, ours in OURS.items():
        original = getattr(utils, name)
        if original is ours:
            continue
        ours.__wrapped__ = original
        for module_name, module in list(sys.modules.items()):
            if module_name.startswith('ultralytics') and getattr(module, name, None) is original:
                setattr(module, name, ours)
