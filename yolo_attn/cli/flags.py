"""The flags of ``heatmap``, ``heatmap-eval`` and ``heatmap-compare``, and how a parsed command line
becomes ``run(**kwargs)``. Defaults are read from where they are written once (``HeatmapOptions``,
``EvalOptions``, ``Style``, ``guards.paths``); nothing here imports torch, OpenCV or yolov5 before a
command runs."""

from __future__ import annotations

import argparse

from ..evaluation.options import BASELINES, EVAL, PROTOCOLS
from ..guards.paths import PROJECTS, RUN_NAME
from ..heatmaps.layers import LAYERS_HELP
from ..heatmaps.methods import CAM_CLASSES, methods_help
from ..heatmaps.options import DEFAULTS as D
from ..heatmaps.style import COLORMAP_NAMES, Style
from ..heatmaps.targets import TARGETS


def add_output_arguments(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument('--project', default=PROJECTS[command], help='save to project/name')
    p.add_argument('--name', default=RUN_NAME, help='save to project/name (a new exp2, exp3, ... if taken)')
    p.add_argument('--exist-ok', action='store_true', help='reuse project/name if it is empty')
    p.add_argument('--no-html', dest='html', action='store_false',
                   help='do not write index.html, the report page of the run')


def add_heatmap_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--weights', required=True, help='model checkpoint (.pt), loaded securely')
    p.add_argument('--source', required=True, help='image, folder, glob, video or .txt list')
    add_model_arguments(p, max_det=D.max_det)
    p.add_argument('--method', default=D.method, choices=list(CAM_CLASSES), metavar='METHOD', help=methods_help())
    p.add_argument('--classes', nargs='+', type=int, help='filter by class: --classes 0, or --classes 0 2 3')
    p.add_argument('--agnostic-nms', action='store_true', help='class-agnostic NMS')
    p.add_argument('--device', default=D.device, help='cpu or cuda device, i.e. 0')
    p.add_argument('--batch', type=int, default=D.batch, help='images per forward pass')
    p.add_argument('--vid-stride', type=int, default=D.vid_stride, help='video frame-rate stride')
    p.add_argument('--renorm-in-box', action='store_true', help='normalise each map inside its box, zero outside')
    p.add_argument('--save-maps', action='store_true', help='also save each raw map as float32 .npy (original size)')
    p.add_argument('--line-thickness', type=int, default=Style.line_thickness,
                   help='box line width (pixels; default: by image size)')
    add_figure_arguments(p)
    p.add_argument('--attention-maps', action='store_true',
                   help="also save each attention block's spatial gate per image (CBAM, CoordAtt, SimAM, ...)")
    p.add_argument('--save-video', action='store_true',
                   help='video sources: also write <video>.mp4 of the frames with every box over their maps')
    add_output_arguments(p, 'heatmap')


def add_model_arguments(p: argparse.ArgumentParser, max_det: int,
                        max_det_help: str = 'maximum detections per image') -> None:
    """What the model is asked, shared by the three commands (``max_det``: the command's own default)."""
    p.add_argument('--imgsz', '--img', '--img-size', type=int, default=D.imgsz, help='inference size (pixels)')
    p.add_argument('--target', default=D.target, choices=list(TARGETS),
                   help='conf: objectness (yolov5 only: anchor-free ultralytics heads have none, refused there); '
                        'class: class probability; score: the confidence the model reports (yolov5: objectness x '
                        'class probability; ultralytics: the class probability)')
    p.add_argument('--layers', default=D.layers, help=LAYERS_HELP)
    p.add_argument('--nms-free', action='store_true',
                   help="ultralytics NMS-free heads (YOLO26, YOLOv10): explain the one-to-one branch's own detections "
                        "(ultralytics' nms=False); default: the one-to-many branch with NMS, as ultralytics predicts")
    p.add_argument('--conf-thres', type=float, default=D.conf_thres, help='confidence threshold')
    p.add_argument('--iou-thres', type=float, default=D.iou_thres, help='NMS IoU threshold')
    p.add_argument('--max-det', type=int, default=max_det, help=max_det_help)


def add_figure_arguments(p: argparse.ArgumentParser) -> None:
    """The figure flags shared with ``heatmap-compare`` (``--line-thickness`` is added by each command)."""
    p.add_argument('--alpha', type=float, default=Style.alpha, help='weight of the map over the image, 0 to 1')
    p.add_argument('--colormap', default=Style.colormap, choices=COLORMAP_NAMES, metavar='NAME',
                   help=f"OpenCV colormap: {', '.join(COLORMAP_NAMES)}")
    p.add_argument('--hide-labels', action='store_true', help='no class labels on the boxes')
    p.add_argument('--hide-conf', action='store_true', help='class names without scores')
    p.add_argument('--scale', type=float, default=Style.scale,
                   help='output size / image size, e.g. 3 for 160-px images: boxes and labels are drawn after '
                        'enlarging, so they stay thin and readable')


def add_evaluation_arguments(p: argparse.ArgumentParser, command: str) -> None:
    add_model_arguments(p, EVAL.max_det, 'maximum detections per image (each one gets a map)')
    p.add_argument('--match-iou', type=float, default=EVAL.match_iou,
                   help='IoU for "same object" (same class, IoU >= this)')
    p.add_argument('--steps', type=int, default=EVAL.steps,
                   help='deletion/insertion steps (pixels perturbed in equal shares)')
    p.add_argument('--protocol', default=EVAL.protocol, choices=PROTOCOLS,
                   help='deletion/insertion budget: box = up to --box-multiple x the box area, in saliency order; '
                        'image = equal shares of the whole image (the earlier protocol, for comparison)')
    p.add_argument('--box-multiple', type=float, default=EVAL.box_multiple,
                   help='box protocol: pixels perturbed at the last step, in box areas')
    p.add_argument('--baseline', default=EVAL.baseline, choices=BASELINES,
                   help='what deleted pixels become and insertion starts from')
    p.add_argument('--batch', type=int, default=EVAL.batch, help='perturbed images per forward pass')
    p.add_argument('--max-images', type=int, default=EVAL.max_images, help='only the first N images')
    p.add_argument('--device', default=EVAL.device, help='cpu or cuda device, i.e. 0')
    add_output_arguments(p, command)


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """``heatmap-eval``'s flags (``evaluate.run``'s keywords)."""
    p.add_argument('--weights', required=True, help='model checkpoint (.pt), loaded securely')
    p.add_argument('--data', required=True, help='data YAML with ground-truth labels')
    p.add_argument('--split', default='val', help='train, val or test')
    p.add_argument('--method', nargs='+', default=D.method, help=f"one or several, or 'all'. {methods_help()}")
    add_evaluation_arguments(p, 'heatmap-eval')
    p.add_argument('--no-sanity', dest='sanity', action='store_false', help='skip the model-randomisation check')
    p.add_argument('--sanity-threshold', type=float, default=EVAL.sanity_threshold,
                   help='pass mark of the mean rank correlation, trained vs random weights (also the fail mark of '
                        'the partial one)')
    p.add_argument('--sanity-partial-threshold', type=float, default=EVAL.sanity_partial_threshold,
                   help='pass mark of the mean rank correlation given the distance-from-box-centre prior')
    p.add_argument('--sanity-max', type=int, default=EVAL.sanity_max,
                   help='matched detections per method in the sanity check')


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """``heatmap-compare``'s flags (``compare.run``'s keywords)."""
    p.add_argument('--weights', nargs='+', required=True, help='two or more checkpoints (.pt) with the same classes')
    p.add_argument('--source', required=True, help='image, folder, glob or .txt list')
    p.add_argument('--method', default=D.method, help=f'one method. {methods_help()}')
    add_evaluation_arguments(p, 'heatmap-compare')
    p.add_argument('--context', type=float, default=EVAL.context,
                   help='margin around each object, in object sizes')
    p.add_argument('--full-image', action='store_true', help='panels show the whole image, not a crop')
    p.add_argument('--line-thickness', type=int, default=Style.line_thickness,
                   help='box line width (pixels; default: by tile size)')
    add_figure_arguments(p)


def kwargs_for(run_fn, args) -> dict:
    """The ``run_fn(**kwargs)`` arguments of a parsed command line: the flags ``run_fn`` takes
    (global options such as ``--import`` are the CLI's), ``--device`` through yolov5's ``select_device``."""
    import inspect

    from yolov5.utils.torch_utils import select_device
    takes = inspect.signature(run_fn).parameters
    kwargs = {k: v for k, v in vars(args).items() if k in takes}
    kwargs['device'] = select_device(kwargs['device'])
    return kwargs
