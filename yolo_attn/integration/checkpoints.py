"""Secure checkpoint loading: ``torch.load(weights_only=True)`` with an explicit allowlist.

The allowlist (``compat.checkpoint_allowlist``) is registered with torch's weights-only unpickler,
which refuses every other global before calling it. ``install`` routes yolov5's own loads
(``attempt_load``, ``strip_optimizer``, train.py) through ``secure_load``. Opt-out for trusted files:
``YOLO_ATTN_UNSAFE_TRUST_CHECKPOINTS=1``, warned on stderr (yolov5 filters ``UserWarning``s).
``load_checkpoint`` also refuses anything but a YOLOv5 detection model. See docs/safety.md.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import sys
from pathlib import Path

import torch

from ..errors import UserError
from ..guards import UNSAFE_ENV

YOLOV5_LOADERS = ('yolov5.models.experimental', 'yolov5.utils.general', 'yolov5.train')
EXPORTED = {'.onnx': 'ONNX', '.torchscript': 'TorchScript', '.engine': 'TensorRT', '.mlmodel': 'CoreML',
            '.pb': 'TensorFlow GraphDef', '.tflite': 'TensorFlow Lite', '.xml': 'OpenVINO'}
EXPORTED_DIRS = {'_openvino_model': 'OpenVINO', '_saved_model': 'TensorFlow SavedModel', '_web_model': 'TensorFlow.js',
                 '_paddle_model': 'PaddlePaddle'}
_WARNED = set()


class CheckpointError(UserError):
    """A weights file that is missing, unreadable, not a YOLOv5 checkpoint, or refused."""


# The checkpoint loaded last, handed once more to the next load of the same unchanged file with the
# same options: a command's preflight (``load_checkpoint``) and yolov5's own load that follows
# (``attempt_load``, train.py) read the file once, not twice. A third load reads the file again.
_LAST: dict = {}


def _once_key(f, map_location, kwargs):
    if not isinstance(f, (str, Path)) or set(kwargs) != {'weights_only'}:
        return None
    st = Path(f).stat()
    return str(Path(f).resolve()), st.st_size, st.st_mtime_ns, str(map_location), kwargs['weights_only']


def secure_load(f, map_location=None, **kwargs):
    """``torch.load`` with ``weights_only=True`` forced; failures become one-line CheckpointErrors."""
    trusted = os.environ.get(UNSAFE_ENV) == '1'
    name = f if isinstance(f, (str, Path)) else getattr(f, 'name', 'checkpoint')
    if trusted and str(name) not in _WARNED:
        _WARNED.add(str(name))
        print(f'WARNING: {UNSAFE_ENV}=1: loading {name} with weights_only=False; a malicious file can run code',
              file=sys.stderr, flush=True)
    kwargs['weights_only'] = not trusted
    import yolov5  # noqa: F401  (its first import activates the plugin: the allowlist must be in place)
    if isinstance(f, (str, Path)) and not Path(f).is_file():
        from ..config.files import resolve_weights
        f = name = resolve_weights(f, CheckpointError)  # a shipped checkpoint by name, else one line
    if isinstance(f, (str, Path)) and Path(f).is_dir():
        raise CheckpointError(f'{name}: is a folder, not a checkpoint file; give the .pt file itself')
    key = _once_key(f, map_location, kwargs)
    cached = _LAST.pop(key, _LAST) if key else _LAST
    if cached is not _LAST:
        return cached
    try:
        ckpt = complete(torch.load(f, map_location=map_location, **kwargs))
        _LAST.clear()
        if key:
            _LAST[key] = ckpt
        return ckpt
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL (\S+)', str(e))
        if found is None:  # not a pickle of known opcodes: random bytes, another format
            raise CheckpointError(f'{name}: not a readable PyTorch checkpoint (truncated or another format?)') from None
        if found.group(1).startswith('ultralytics.'):
            raise CheckpointError(f'{name}: an ultralytics (YOLOv8/YOLO11/YOLO26) checkpoint; this command takes yolov5 '
                                  f'checkpoints. ultralytics models run with yolo-attn yolo ... (docs/ultralytics.md); '
                                  f'nothing was executed') from None
        raise CheckpointError(f'{name}: refused: it references {found.group(1)}, which is not on the allowlist '
                              f'(torch.nn, yolov5 and registered block classes, numpy arrays); nothing was executed. '
                              f'A block of your own: name its module, yolo-attn --import MODULE (or YOLO_ATTN_IMPORTS). '
                              f'Only for a file you trust: {UNSAFE_ENV}=1') from None
    except Exception as e:  # any parse failure of arbitrary bytes (zip, pickle, storage errors)
        import zipfile
        if isinstance(f, (str, Path)) and zipfile.is_zipfile(f):
            raise CheckpointError(f'{name}: not a readable PyTorch checkpoint: a zip archive without the records '
                                  f'torch.save writes (another kind of archive, or a damaged checkpoint)') from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first.split('  (Could this error message be improved?')[0]  # torch's request for reports
        raise CheckpointError(f'{name}: not a readable PyTorch checkpoint (truncated or another format?): {first}') from None


def exported_format(f):
    """'ONNX', 'TorchScript', ... for an exported model file or folder; None for anything else."""
    p = Path(str(f).rstrip('/'))
    return EXPORTED.get(p.suffix.lower()) or next((v for k, v in EXPORTED_DIRS.items() if p.name.endswith(k)), None)


def is_detection_model(model) -> bool:
    """A yolov5 ``DetectionModel`` (either import name of its module) whose last layer is a head."""
    names = {c.__name__ for c in type(model).__mro__}
    return bool(names & {'DetectionModel', 'SegmentationModel'}) and hasattr(model, 'model') and \
        type(model.model[-1]).__name__ in ('Detect', 'Segment')


def load_checkpoint(f, map_location='cpu') -> dict:
    """A YOLOv5 checkpoint dict (with ``model`` or ``ema``), loaded securely."""
    fmt = exported_format(f)
    if fmt is not None:
        raise CheckpointError(f'{f}: a {fmt} export; this needs the PyTorch .pt checkpoint it was exported from '
                              f'(heatmaps need gradients through the PyTorch model, which exports do not keep)')
    ckpt = secure_load(f, map_location=map_location)
    model = (ckpt.get('ema') or ckpt.get('model')) if isinstance(ckpt, dict) else None
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f'{f}: not a YOLOv5 checkpoint (expected a dict with a "model" entry)')
    if not is_detection_model(model):
        raise CheckpointError(f'{f}: its "model" is a {type(model).__name__}, not a YOLOv5 detection model '
                              f'(DetectionModel ending in Detect)')
    check_consistent(model, f)
    return ckpt


def check_consistent(model, f) -> None:
    """Refuse, in one line, a checkpoint whose ``names``, ``stride``, ``anchors`` or ``yaml`` disagree
    with its Detect head (yolov5 would fail later with a KeyError or IndexError)."""
    head = model.model[-1]
    nc, nl, na = head.nc, head.nl, head.na
    from .datasets import name_dict
    names = name_dict(getattr(model, 'names', None))
    ids = list(names) if isinstance(names, dict) else None
    if ids is None or sorted(ids) != list(range(nc)):
        shown = f'{len(ids)} names' if ids is not None else f'names {type(names).__name__}'
        raise CheckpointError(f'{f}: its Detect head has {nc} classes but the model holds {shown} (one per class '
                              f'id 0..{nc - 1} expected): a damaged or edited checkpoint')
    for where, stride in (('model', getattr(model, 'stride', None)), ('Detect', getattr(head, 'stride', None))):
        if not isinstance(stride, torch.Tensor) or stride.numel() != nl or not bool((stride > 0).all()):
            raise CheckpointError(f'{f}: the {where} stride is {stride!r}, expected {nl} positive values (one per head '
                                  f'level): a damaged or edited checkpoint')
    if not isinstance(getattr(head, 'anchors', None), torch.Tensor) or tuple(head.anchors.shape) != (nl, na, 2):
        raise CheckpointError(f'{f}: its anchors are not {nl} levels x {na} anchors x 2: a damaged or edited checkpoint')
    if not isinstance(getattr(model, 'yaml', None), dict):
        raise CheckpointError(f'{f}: its model lacks the config it was built from (model.yaml); save it from a '
                              f'yolov5 Model or train.py')


def complete(ckpt):
    """A checkpoint's detection models get ``nc`` from their head where it is missing: train.py
    sets it, a model saved otherwise (``torch.save({'model': Model(cfg)})``) has it in its Detect
    only, and val.py reads ``model.nc`` (an AttributeError traceback)."""
    if isinstance(ckpt, dict):
        for m in (ckpt.get('model'), ckpt.get('ema')):
            if isinstance(m, torch.nn.Module) and is_detection_model(m) and not hasattr(m, 'nc'):
                m.nc = m.model[-1].nc
    return ckpt


def install() -> None:
    """Route yolov5's checkpoint loads through ``secure_load`` (idempotent)."""
    from .compat import ModuleView
    proxy = ModuleView(torch, load=secure_load)  # torch as yolov5's loader modules see it
    for name in YOLOV5_LOADERS:
        module = importlib.import_module(name)
        if module.torch is torch:
            module.torch = proxy
