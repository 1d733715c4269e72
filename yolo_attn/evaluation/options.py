"""Flags shared by ``heatmap-eval`` and ``heatmap-compare`` (yolov5's names), and their parsing."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..heatmaps.engine import DEFAULT_METHOD, METHODS
from ..heatmaps.run import LAYERS_HELP, kwargs_for
from ..heatmaps.targets import TARGETS
from .perturb import BASELINES, BOX_MULTIPLE, PROTOCOLS


def methods(value) -> list[str]:
    """``'all'``, a name, a comma list or a list of names -> known method names, in order, once each."""
    items = [value] if isinstance(value, str) else list(value or [DEFAULT_METHOD])
    names = [n.strip() for item in items for n in str(item).split(',') if n.strip()]
    if 'all' in names:
        return list(METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise UserError(f"unknown --method {', '.join(unknown)}; choose from {', '.join(METHODS)} or all")
    return list(dict.fromkeys(names))


def layers(value):
    """``--layers`` as given (indices and roles are resolved per model by ``heatmaps.layers``); None
    for the default."""
    if isinstance(value, str):
        return value.strip() or None
    return value or None


def add_common(p: argparse.ArgumentParser, project: str) -> None:
    p.add_argument('--imgsz', '--img', '--img-size', type=int, default=640, help='inference size (pixels)')
    p.add_argument('--target', default='score', choices=list(TARGETS),
                   help='conf: objectness; class: class probability; score: objectness x class probability')
    p.add_argument('--layers', default=None, help=LAYERS_HELP)
    p.add_argument('--conf-thres', type=float, default=0.25, help='confidence threshold of the explained detections')
    p.add_argument('--iou-thres', type=float, default=0.45, help='NMS IoU threshold')
    p.add_argument('--max-det', type=int, default=300, help='maximum detections per image (each one gets a map)')
    p.add_argument('--match-iou', type=float, default=0.5, help='IoU for "same object" (same class, IoU >= this)')
    p.add_argument('--steps', type=int, default=20, help='deletion/insertion steps (pixels perturbed in equal shares)')
    p.add_argument('--protocol', default='box', choices=PROTOCOLS,
                   help='deletion/insertion budget: box = up to --box-multiple x the box area, in saliency order; '
                        'image = equal shares of the whole image (the earlier protocol, for comparison)')
    p.add_argument('--box-multiple', type=float, default=BOX_MULTIPLE,
                   help='box protocol: pixels perturbed at the last step, in box areas')
    p.add_argument('--baseline', default='blur', choices=BASELINES,
                   help='what deleted pixels become and insertion starts from')
    p.add_argument('--batch', type=int, default=8, help='perturbed images per forward pass')
    p.add_argument('--max-images', type=int, default=None, help='only the first N images')
    p.add_argument('--device', default='cpu', help='cpu or cuda device, i.e. 0')
    p.add_argument('--project', default=project, help='save to project/name')
    p.add_argument('--name', default='exp', help='save to project/name (a new exp2, exp3, ... if taken)')
    p.add_argument('--exist-ok', action='store_true', help='reuse project/name if it is empty')


def kwargs_from(args, run) -> dict:
    """The ``run(**kwargs)`` arguments of a parsed command line (the flags ``run`` takes; global
    options such as ``--import`` are the CLI's)."""
    kwargs = kwargs_for(run, args)
    kwargs['layers'] = layers(kwargs.get('layers'))
    if kwargs.get('steps', 1) < 0 or kwargs.get('batch', 1) < 1 or (kwargs.get('max_images') or 1) < 1:
        raise UserError('--steps must be >= 0 (>= 1 for heatmap-eval), --batch and --max-images >= 1')
    if not kwargs.get('box_multiple', 1) > 0:
        raise UserError(f"--box-multiple {kwargs['box_multiple']}: must be a positive number of box areas")
    return kwargs


def explain_each(model, files, method, opts):
    """``explain()`` image by image (it takes one source; a .txt list would split paths at spaces)."""
    from ..guards.images import NoReadableImage
    from ..heatmaps.api import explain
    for f in files:
        try:
            yield from explain(model, str(f), opts['imgsz'], method, opts['target'], opts['layers'],
                               opts['conf_thres'], opts['iou_thres'], max_det=opts['max_det'], device=opts['device'])
        except NoReadableImage:  # an unreadable image: skipped, with the loader's one warning line
            continue
