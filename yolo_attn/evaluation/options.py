"""The flags of ``heatmap-eval`` and ``heatmap-compare`` (yolov5's names), and their parsing.

Nothing here, nor in what it imports, imports torch, pytorch-grad-cam, OpenCV or yolov5 (the
heatmap API is imported by ``explain_each`` when it runs): the CLI sets these flags up, and answers
``--help`` and argument errors, at once.
"""

from __future__ import annotations

import argparse

from ..errors import OptionError, UserError
from ..heatmaps.flags import add_figure_arguments, add_model_arguments, kwargs_for
from ..heatmaps.layers import normalise as layers  # noqa: F401  (options.layers: the --layers value, one rule)
from ..heatmaps.methods import CAM_CLASSES, DEFAULT_METHOD, methods_help
from .perturb import BASELINES, BOX_MULTIPLE, PROTOCOLS
from .sanity import PARTIAL_THRESHOLD, RAW_THRESHOLD

MAX_DET = 300  # evaluation's default (val.py's): every explained detection costs a map and its curves


def methods(value) -> list[str]:
    """``'all'``, a name, a comma list or a list of names -> known method names, in order, once each."""
    items = [value] if isinstance(value, str) else list(value or [DEFAULT_METHOD])
    names = [n.strip() for item in items for n in str(item).split(',') if n.strip()]
    if 'all' in names:
        return list(CAM_CLASSES)
    unknown = [n for n in names if n not in CAM_CLASSES]
    if unknown:
        raise OptionError('method', f"{', '.join(unknown)}; choose from {', '.join(CAM_CLASSES)} or all", 'unknown ')
    return list(dict.fromkeys(names))


def add_common(p: argparse.ArgumentParser, project: str) -> None:
    add_model_arguments(p, MAX_DET, 'maximum detections per image (each one gets a map)')
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


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """``heatmap-eval``'s flags (``evaluate.run``'s keywords)."""
    p.add_argument('--weights', required=True, help='model checkpoint (.pt), loaded securely')
    p.add_argument('--data', required=True, help='data YAML with ground-truth labels')
    p.add_argument('--split', default='val', help='train, val or test')
    p.add_argument('--method', nargs='+', default=[DEFAULT_METHOD],
                   help=f"one or several, or 'all'. {methods_help()}")
    add_common(p, 'runs/heatmap-eval')
    p.add_argument('--no-sanity', dest='sanity', action='store_false', help='skip the model-randomisation check')
    p.add_argument('--sanity-threshold', type=float, default=RAW_THRESHOLD,
                   help='pass mark of the mean rank correlation, trained vs random weights (also the fail mark of '
                        'the partial one)')
    p.add_argument('--sanity-partial-threshold', type=float, default=PARTIAL_THRESHOLD,
                   help='pass mark of the mean rank correlation given the distance-from-box-centre prior')
    p.add_argument('--sanity-max', type=int, default=100, help='matched detections per method in the sanity check')


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """``heatmap-compare``'s flags (``compare.run``'s keywords)."""
    p.add_argument('--weights', nargs='+', required=True, help='two or more checkpoints (.pt) with the same classes')
    p.add_argument('--source', required=True, help='image, folder, glob or .txt list')
    p.add_argument('--method', default=DEFAULT_METHOD, help=f'one method. {methods_help()}')
    add_common(p, 'runs/heatmap-compare')
    p.add_argument('--context', type=float, default=1.0, help='margin around each object, in object sizes')
    p.add_argument('--full-image', action='store_true', help='panels show the whole image, not a crop')
    p.add_argument('--line-thickness', type=int, default=None, help='box line width (pixels; default: by tile size)')
    add_figure_arguments(p)


def kwargs_from(args, run) -> dict:
    """The ``run(**kwargs)`` arguments of a parsed command line (the flags ``run`` takes; global
    options such as ``--import`` are the CLI's)."""
    kwargs = kwargs_for(run, args)
    kwargs['layers'] = layers(kwargs.get('layers'))
    max_images = kwargs.get('max_images')
    if kwargs.get('steps', 1) < 0 or kwargs.get('batch', 1) < 1 or (max_images is not None and max_images < 1):
        raise UserError('--steps must be >= 0 (>= 1 for heatmap-eval), --batch and --max-images >= 1')
    if not kwargs.get('box_multiple', 1) > 0:
        raise UserError(f"--box-multiple {kwargs['box_multiple']}: must be a positive number of box areas")
    if not 0 < kwargs.get('match_iou', 0.5) <= 1:
        raise UserError(f"--match-iou {kwargs['match_iou']}: an IoU, more than 0 and at most 1")
    for key in ('sanity_max', 'context'):
        if kwargs.get(key, 0) < 0:
            raise UserError(f"--{key.replace('_', '-')} {kwargs[key]}: must be >= 0")
    return kwargs


EXPLAIN_KEYS = ('imgsz', 'target', 'layers', 'conf_thres', 'iou_thres', 'max_det', 'device')  # of opts


def explain_each(model, files, method, opts):
    """``explain()`` image by image (it takes one source; a .txt list would split paths at spaces)."""
    from ..guards.images import NoReadableImage
    from ..heatmaps.api import explain
    for f in files:
        try:
            yield from explain(model, str(f), method=method, **{k: opts[k] for k in EXPLAIN_KEYS})
        except NoReadableImage:  # an unreadable image: skipped, with the loader's one warning line
            continue
