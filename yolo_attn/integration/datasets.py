"""Data YAMLs: load, resolve, and check them before yolov5 runs, with one clear line per problem.

yolov5 7.0.14 (pip) resolves a relative ``path:`` against its own package folder in
site-packages, and downloads the dataset when the val split is missing. ``check_dataset`` below
replaces its namesake in every yolov5 module: a relative ``path`` (or none) is taken relative to
the data YAML's own folder, nothing is downloaded, and a missing split is an error.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import UserError
from ..config.yamlfile import read_yaml
from ..guards.paths import refuse_url, walk_files

SPLITS = ('train', 'val', 'test')


class DataError(UserError):
    """A data YAML, image folder or label file yolov5 cannot train or validate on."""


def name_dict(names):
    """Class names as ``{id: name}``: yolov5 keeps a dict, older checkpoints and data YAMLs a list.
    Anything else is returned as it is (the caller refuses it)."""
    return dict(enumerate(names)) if isinstance(names, (list, tuple)) else names


def load_data_yaml(data) -> dict:
    """The data dict with ``path`` made absolute (relative to the YAML's folder) and names as a dict."""
    file = Path(str(data))
    refuse_url(data, '--data')
    if not file.is_file():
        what = 'is a folder; give the data YAML inside it' if file.is_dir() else 'not found'
        raise DataError(f'data YAML {what}: {data}')
    d = read_yaml(file, DataError)
    if not isinstance(d, dict):
        raise DataError(f'{file}: a data YAML must be a mapping with train:, val: and names:')
    missing = [k for k in ('train', 'val', 'names') if not d.get(k)]
    if missing:
        raise DataError(f"{file}: missing {', '.join(k + ':' for k in missing)} (see data/shapes.yaml for the format)")
    names = name_dict(d['names'])
    if not isinstance(names, dict) or not all(isinstance(k, int) for k in names):
        raise DataError(f'{file}: names: must be a list or a mapping of integer class ids to names')
    if 'nc' in d and d['nc'] != len(names):
        raise DataError(f"{file}: nc: {d['nc']} but names: lists {len(names)} classes")
    root = Path(d.get('path') or '.')
    d['path'] = str(root if root.is_absolute() else (file.parent / root).resolve())
    d['names'] = names
    return d


def split_images(d: dict, split: str) -> list[Path]:
    """Image files of a split given as a folder, a .txt list of images, or a list of those."""
    from yolov5.utils.dataloaders import IMG_FORMATS
    entries = d.get(split)
    images = []
    for entry in entries if isinstance(entries, list) else [entries]:
        p = Path(entry)
        p = p if p.is_absolute() else Path(d['path']) / p
        if p.is_dir():  # as yolov5 lists it (symlinked folders followed), each real folder once
            images += [Path(f) for f in walk_files(p) if Path(f).suffix.lower().lstrip('.') in IMG_FORMATS]
        elif p.is_file() and p.suffix == '.txt':
            lines = [s.strip() for s in p.read_text().splitlines() if s.strip()]
            # as yolov5's LoadImagesAndLabels: only lines starting with ./ are relative to the list's
            # folder (others to the working folder), and only image suffixes count
            images += [p.parent / s[2:] if s.startswith('./') else Path(s) for s in lines
                       if s.rsplit('.', 1)[-1].lower() in IMG_FORMATS]
        elif not p.exists():
            raise DataError(f'{split}: {p} does not exist (check path: and {split}: in the data YAML)')
    return images


def label_file(image: Path) -> Path:
    from yolov5.utils.dataloaders import img2label_paths
    return Path(img2label_paths([str(image)])[0])


def check_labels(images: list[Path], nc: int) -> None:
    """Every label row is ``class x y w h`` with 0 <= class < nc and normalised coordinates."""
    for image in images:
        lf = label_file(image)
        if not lf.is_file():
            continue  # an image without objects
        for n, line in enumerate(lf.read_text(errors='replace').splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            try:
                values = [float(v) for v in parts]
            except ValueError:
                raise DataError(f'{lf}:{n}: not numbers: {line.strip()!r}') from None
            if len(values) < 5 or (len(values) > 5 and len(values) % 2 == 0):
                raise DataError(f'{lf}:{n}: expected "class x_center y_center width height", got {line.strip()!r}')
            if not all(math.isfinite(v) for v in values):
                raise DataError(f'{lf}:{n}: values must be finite numbers, got {line.strip()!r}')
            cls = values[0]
            if cls != int(cls) or not 0 <= cls < nc:
                raise DataError(f'{lf}:{n}: class {parts[0]} out of range 0..{nc - 1} (the data YAML has {nc} names)')
            if not all(0 <= v <= 1 for v in values[1:]):
                raise DataError(f'{lf}:{n}: coordinates must be normalised to 0..1, got {line.strip()!r}')


def readable(image: Path) -> bool:
    """The file's header is an image Pillow knows (what yolov5's ``verify_image_label`` needs)."""
    from PIL import Image
    try:
        with Image.open(image) as im:
            im.verify()
        return True
    except Exception:  # Pillow raises many types for a file that is not an image
        return False


def check_data(data, splits=('train', 'val')) -> dict:
    """Load a data YAML and check that each split has readable images and valid labels."""
    d = load_data_yaml(data)
    for split in splits:
        images = split_images(d, split)
        if not images:
            raise DataError(f'{data}: no images found for {split}: {d[split]} (under {d["path"]})')
        if not any(readable(im) for im in images):
            raise DataError(f'{data}: none of the {len(images)} images of {split}: can be read (empty, truncated '
                            f'or not images), e.g. {images[0]}')
        check_labels(images, len(d['names']))
    return d


def make_check_dataset(original):
    """A ``check_dataset`` for yolov5's modules: YAML-relative ``path``, never downloads."""

    def check_dataset(data, autodownload=True):
        if isinstance(data, (str, Path)):
            data = load_data_yaml(data)
        for split in ('val',):
            for p in data[split] if isinstance(data[split], list) else [data[split]]:
                p = Path(p) if Path(p).is_absolute() else Path(data['path']) / p
                if not p.exists():
                    raise DataError(f'dataset not found: {p} (yolo-attn never downloads datasets)')
        return original(data, autodownload=False)

    return check_dataset


def install() -> None:
    """Replace ``check_dataset`` in every yolov5 module that imported it (idempotent)."""
    import yolov5.utils.general as general

    from .compat import replace_in_yolov5
    if not getattr(general.check_dataset, '_yolo_attn', False):
        replacement = make_check_dataset(general.check_dataset)
        replacement._yolo_attn = True
        replace_in_yolov5('check_dataset', replacement)
