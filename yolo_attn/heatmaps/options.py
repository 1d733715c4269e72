"""What a heatmap run computes, every default written once (after ultralytics' ``cfg/default.yaml``).

``HeatmapOptions`` (keyword-only, frozen) is taken by ``explain``, ``HeatmapEngine`` and the
evaluation's ``Perturber``, or its fields as keywords; the CLI's flags read ``DEFAULTS``. Bad
values are ``errors.OptionError`` (a ``ValueError``) naming the option.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from ..errors import OptionError, is_int, is_number
from ..guards.images import IMGSZ
from .combine import DEFAULT_RULE, RULES
from .methods import DEFAULT_METHOD, check_method
from .targets import TARGETS


@dataclass(frozen=True, kw_only=True)
class HeatmapOptions:
    imgsz: int = IMGSZ  # inference size (pixels), rounded up to the model's stride as detect.py does
    method: str = DEFAULT_METHOD  # pytorch-grad-cam weighting (methods.CAM_CLASSES)
    target: str = 'score'  # what a map explains (targets.TARGETS): conf, class or score
    layers: object = None  # layer indices and/or roles (layers.py); None: layers.DEFAULT
    combine: str = DEFAULT_RULE  # how a detection's layer maps are combined (combine.RULES)
    conf_thres: float = 0.25  # yolov5's NMS, as detect.py
    iou_thres: float = 0.45
    classes: tuple | None = None  # keep only these class ids
    agnostic_nms: bool = False
    max_det: int = 1000  # detections kept per image (detect.py's default)
    batch: int = 1  # images per forward pass
    vid_stride: int = 1  # every vid_stride-th video frame
    renorm_in_box: bool = False  # each map normalised inside its box, zero outside
    attention_maps: bool = False  # also each attention block's spatial gate per image (attention_maps.py)
    device: object = 'cpu'
    chunk: int = 16  # gradient groups held at a time (engine: memory vs. speed)
    pack: bool = True  # share backward passes between detections with disjoint gradients (packing.py)

    def __post_init__(self):
        check_method(self.method)
        if self.target not in TARGETS:
            raise OptionError('target', f"{self.target!r}; choose from {', '.join(TARGETS)}", 'unknown ')
        if self.combine not in RULES:
            raise OptionError('combine', f"{self.combine!r}: unknown layer combination; choose from "
                                         f"{', '.join(RULES)}")
        for name in ('max_det', 'batch', 'vid_stride', 'chunk'):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise OptionError(name, f'{getattr(self, name)!r}: must be a whole number >= 1')
        for name in ('conf_thres', 'iou_thres'):
            if not is_number(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                raise OptionError(name, f'{getattr(self, name)!r}: must be between 0 and 1')
        if self.classes is not None:
            object.__setattr__(self, 'classes', tuple(int(c) for c in self.classes))

    @classmethod
    def of(cls, options: HeatmapOptions | None = None, **changes) -> HeatmapOptions:
        """``options`` (default: ``DEFAULTS``) with ``changes``; an unknown name is refused with the
        closest one."""
        known = [f.name for f in dataclasses.fields(cls)]
        for name in changes:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                raise TypeError(f"unknown heatmap option {name!r}{f' (did you mean {close[0]}?)' if close else ''}; "
                                f"options: {', '.join(known)}")
        base = DEFAULTS if options is None else options
        return dataclasses.replace(base, **changes) if changes else base

    def nms(self) -> dict:
        """yolov5 ``non_max_suppression``'s arguments."""
        return dict(conf_thres=self.conf_thres, iou_thres=self.iou_thres, classes=list(self.classes)
                    if self.classes is not None else None, agnostic=self.agnostic_nms, max_det=self.max_det)


DEFAULTS = HeatmapOptions()
