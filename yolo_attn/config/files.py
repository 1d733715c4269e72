"""The shipped files (package data) and model YAMLs by short name, loaded as data.

Shipped YAMLs and checkpoint live in ``yolo_attn/models/`` (found with ``importlib.resources``, so
any install works). A short name (``yolov5s-cbam``, ``yolov5s``) resolves as: an existing path, the
shipped ``models/``, then yolov5's ``models/``, ``models/hub/``, ``models/segment/``; weights
likewise (``resolve_weights``). YAML is read with ``yamlfile``: nothing is executed.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from ..errors import ModelConfigError, UserError
from .yamlfile import read_yaml


def shipped_dir() -> Path:
    """The package's ``models/`` folder: the shipped model YAMLs, ``pretrained/`` checkpoints."""
    return Path(str(resources.files('yolo_attn').joinpath('models')))


def shipped_configs() -> list[Path]:
    """This project's model YAMLs."""
    return sorted(shipped_dir().glob('*.yaml'))


def shipped_weights() -> list[Path]:
    """The shipped checkpoints (``models/pretrained/*.pt``)."""
    return sorted((shipped_dir() / 'pretrained').glob('*.pt'))


def model_dirs() -> list[Path]:
    """Where short YAML names are looked up: the shipped folders (yolov5's, then ultralytics'), then
    yolov5's own."""
    import importlib.util
    spec = importlib.util.find_spec('yolov5')  # its folder, without importing yolov5 (and torch)
    upstream = Path(spec.origin).parent / 'models' if spec is not None and spec.origin else shipped_dir()
    return [d for d in (shipped_dir(), shipped_ultralytics_dir(), upstream, upstream / 'hub', upstream / 'segment')
            if d.is_dir()]


def shipped_ultralytics_dir() -> Path:
    """The shipped attention YAMLs for ultralytics 8.x (``tools/ultralytics_attention_yamls.py``)."""
    return shipped_dir() / 'ultralytics'


def _bare_name(path: Path) -> bool:
    return path.parent == Path('.')


def resolve_cfg(cfg: str | Path) -> Path:
    """Path of a model YAML given as a path or a short name; one clear error when not found."""
    path = Path(cfg)
    if path.is_file():
        return path
    if path.is_dir():
        raise ModelConfigError(f'{cfg}: is a folder, expected a model YAML file')
    name = path.name if path.suffix in ('.yaml', '.yml') else path.name + '.yaml'
    if _bare_name(path):
        for d in model_dirs():
            if (d / name).is_file():
                return d / name
    known = sorted({p.stem for d in model_dirs() for p in d.glob('*.yaml')})
    close = difflib.get_close_matches(path.stem, known, n=3)
    hint = (f"; did you mean {', '.join(close)}?" if close else
            f"; give a path to a .yaml file or a shipped name ({', '.join(p.stem for p in shipped_configs()[:3])}, "
            f'... `yolo-attn build --all` lists them)')
    raise ModelConfigError(f'model YAML not found: {cfg}{hint}')


def resolve_weights(weights: str | Path, error: type[UserError] = UserError, hint: str = '') -> Path:
    """A weights file given as a path, or a shipped checkpoint by name (``yolov5n-shapes.pt``, from
    any folder); else ``error`` naming the shipped ones (and ``hint``, e.g. how to train from scratch).
    Never a download: a URL is just a name that is not found (``guards.paths`` refuses URLs first)."""
    path = Path(str(weights))
    if path.exists():
        return path
    if _bare_name(path):
        for shipped in shipped_weights():
            if path.name in (shipped.name, shipped.stem):
                return shipped
    names = ', '.join(p.name for p in shipped_weights())
    raise error(f'weights not found: {weights} (yolo-attn never downloads; give a local file, or a shipped '
                f"checkpoint by name: {names}{'; ' + hint if hint else ''})")


def model_rows(d: dict) -> list:
    """The layer rows of a model dict as written: ``backbone`` then ``head``."""
    return list(d.get('backbone') or []) + list(d.get('head') or [])


def load_cfg(cfg: str | Path) -> dict:
    """The model dict of a YAML (path or short name), checked to be a mapping with layer lists."""
    path = resolve_cfg(cfg)
    d = read_yaml(path, ModelConfigError)
    if not isinstance(d, dict) or not isinstance(d.get('backbone'), list) or not isinstance(d.get('head'), list):
        raise ModelConfigError(f'{path}: not a YOLOv5 model YAML (needs backbone: and head: layer lists)')
    return d

