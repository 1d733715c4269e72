"""Build a detector from a YAML and describe it: layer table, parameters, GFLOPs, a forward check."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ModelConfigError
from ..guards.images import IMGSZ
from .limits import RUN_ERRORS, forward_error
from .files import load_cfg, resolve_cfg


@contextlib.contextmanager
def quiet_yolov5():
    """Silence yolov5's LOGGER (its build prints a layer table and a summary)."""
    logger = logging.getLogger('yolov5')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _not_model_summary(record) -> bool:
    return not record.getMessage().startswith('Model summary')


@contextlib.contextmanager
def layer_table_only():
    """yolov5's build output without its closing "Model summary" line, whose GFLOPs are always at
    640 (``model_info``): ``build`` prints its own figure at the requested size instead."""
    logger = logging.getLogger('yolov5')
    logger.addFilter(_not_model_summary)
    try:
        yield
    finally:
        logger.removeFilter(_not_model_summary)


def build_model(cfg, nc: int | None = None, verbose: bool = False, ch: int = 3):
    """yolov5's ``Model`` for a YAML path or short name, built by the plugin's parser
    (``yolo_attn.model(...)``); config errors name the file. ``verbose`` prints yolov5's layer table."""
    from yolov5.models.yolo import Model
    path = resolve_cfg(cfg)
    d = load_cfg(path)
    if nc is not None:  # yolov5's Model(nc=0) ignores a falsy nc; in the YAML it meets the parser's check
        d = {**d, 'nc': nc}
    try:
        with layer_table_only() if verbose else quiet_yolov5():
            model = Model(d, ch=ch)
    except ModelConfigError as e:
        raise ModelConfigError(f'{path}: {e}') from None
    except RUN_ERRORS as e:  # built, but yolov5's stride-probing forward pass fails
        raise forward_error(path, e) from None
    model.yaml_file = path.name
    return model


@dataclass
class ModelSummary:
    name: str
    layers: int
    params: int
    gflops: float
    imgsz: int
    output_shape: tuple
    expected_predictions: int

    def line(self) -> str:
        return (f'{self.name:<22} {self.layers:>4} layers {self.params:>11,} params '
                f'{self.gflops:>7.1f} GFLOPs@{self.imgsz}  output {tuple(self.output_shape)}')


def gflops(model, imgsz: int) -> float:
    """GFLOPs of one ``imgsz`` x ``imgsz`` image, counted by thop as yolov5's ``model_info`` does."""
    import thop
    from copy import deepcopy
    p = next(model.parameters())
    im = torch.zeros((1, 3, imgsz, imgsz), device=p.device)
    return thop.profile(deepcopy(model), inputs=(im,), verbose=False)[0] / 1e9 * 2


def summarize(model, imgsz: int = IMGSZ) -> ModelSummary:
    """Parameters, GFLOPs and one eval-mode forward at ``imgsz``, checked against the head's grid."""
    if imgsz % int(model.stride.max()):
        raise ModelConfigError(f'--imgsz {imgsz} must be a multiple of the model stride {int(model.stride.max())}')
    model.eval()
    with torch.no_grad():
        pred = model(torch.zeros(1, 3, imgsz, imgsz))[0]
    detect = model.model[-1]
    expected = sum(detect.na * (imgsz // int(s)) ** 2 for s in detect.stride)
    if pred.shape[1] != expected or pred.shape[2] != detect.no:
        raise RuntimeError(f'forward check failed: output {tuple(pred.shape)}, expected (1, {expected}, {detect.no})')
    return ModelSummary(Path(getattr(model, 'yaml_file', 'model')).stem, len(model.model),
                        sum(p.numel() for p in model.parameters()), gflops(model, imgsz), imgsz,
                        tuple(pred.shape), expected)
