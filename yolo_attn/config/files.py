"""Find model YAMLs by short name and load them as data (``yaml.safe_load``, nothing executed).

Short names (``yolov5s-cbam``, ``yolov5s-cbam.yaml``, ``yolov5s``, ``yolov5s6``, ``yolov5s-seg``)
resolve, from any working directory, in this order: an existing path as given; this project's
``models/`` (next to the package in a source checkout, or ``<prefix>/share/yolo-attn/models``
when installed as a wheel); yolov5's own ``models/``, ``models/hub/`` and ``models/segment/``.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from .parser import ModelConfigError
from .yamlfile import read_yaml


def project_models_dir() -> Path:
    """This project's ``models/`` folder (source checkout or installed data files)."""
    checkout = Path(__file__).resolve().parents[2] / 'models'
    return checkout if checkout.is_dir() else Path(sys.prefix) / 'share' / 'yolo-attn' / 'models'


def model_dirs() -> list[Path]:
    import yolov5
    upstream = Path(yolov5.__file__).parent / 'models'
    return [d for d in (project_models_dir(), upstream, upstream / 'hub', upstream / 'segment') if d.is_dir()]


def shipped_configs() -> list[Path]:
    """This project's model YAMLs."""
    return sorted(project_models_dir().glob('*.yaml'))


def resolve_cfg(cfg: str | Path) -> Path:
    """Path of a model YAML given as a path or a short name; one clear error when not found."""
    path = Path(cfg)
    if path.is_file():
        return path
    if path.is_dir():
        raise ModelConfigError(f'{cfg}: is a folder, expected a model YAML file')
    name = path.name if path.suffix in ('.yaml', '.yml') else path.name + '.yaml'
    if path.parent == Path('.'):
        for d in model_dirs():
            if (d / name).is_file():
                return d / name
    known = sorted({p.stem for d in model_dirs() for p in d.glob('*.yaml')})
    close = difflib.get_close_matches(path.stem, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else '; give a path to a .yaml file or a shipped name such as yolov5s-cbam'
    raise ModelConfigError(f'model YAML not found: {cfg}{hint}')


def load_cfg(cfg: str | Path) -> dict:
    """The model dict of a YAML (path or short name), checked to be a mapping with layer lists."""
    path = resolve_cfg(cfg)
    d = read_yaml(path, ModelConfigError)
    if not isinstance(d, dict) or not isinstance(d.get('backbone'), list) or not isinstance(d.get('head'), list):
        raise ModelConfigError(f'{path}: not a YOLOv5 model YAML (needs backbone: and head: layer lists)')
    return d
