"""What ``heatmap-eval`` and ``heatmap-compare`` compute, with every default written once.

``EVAL`` (an ``EvalOptions``) holds the defaults ``evaluate.run``, ``compare.run``, ``Perturber``
and the CLI's flags read; ``check`` refuses bad values in one line. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError, UserError
from ..heatmaps.layers import normalise as normalise_layers
from ..heatmaps.methods import CAM_CLASSES, DEFAULT_METHOD
from .sanity import PARTIAL_THRESHOLD, RAW_THRESHOLD

BASELINES = ('blur', 'gray', 'black')  # what deleted pixels become (perturb.baseline_image)
PROTOCOLS = ('box', 'image')  # deletion/insertion budget: a multiple of the box area, or the image
BOX_MULTIPLE = 2.0  # box protocol budget in box areas: the object, and room for a halo


@dataclass(frozen=True, kw_only=True)
class EvalOptions:
    max_det: int = 300  # val.py's: every explained detection costs a map and its curves
    match_iou: float = 0.5  # "same object": same class, IoU >= this
    steps: int = 20  # deletion/insertion steps
    protocol: str = 'box'  # PROTOCOLS
    box_multiple: float = BOX_MULTIPLE
    baseline: str = 'blur'  # BASELINES
    batch: int = 8  # perturbed images per forward pass
    max_images: int | None = None
    device: str = 'cpu'
    sanity: bool = True  # heatmap-eval: the model-randomisation check
    sanity_threshold: float = RAW_THRESHOLD
    sanity_partial_threshold: float = PARTIAL_THRESHOLD
    sanity_max: int = 100  # matched detections per method in the sanity check
    context: float = 1.0  # heatmap-compare: margin around each object, in object sizes
    full_image: bool = False


EVAL = EvalOptions()


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


def check(kwargs: dict) -> dict:
    """``kwargs`` of ``evaluate.run``/``compare.run`` with ``layers`` normalised; bad values refused."""
    kwargs = dict(kwargs)
    kwargs['layers'] = normalise_layers(kwargs.get('layers'))
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
