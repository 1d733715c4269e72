"""The flags of ``yolo-attn heatmap`` and those it shares with ``heatmap-eval`` and
``heatmap-compare``, and how a parsed command line becomes ``run(**kwargs)``'s arguments.

Defaults come from where they are written once (``options.DEFAULTS``, ``style.Style``), choices
from the modules that own them (``methods``, ``targets``, ``layers``, ``style``). Nothing here, nor
in what it imports, imports torch, pytorch-grad-cam, OpenCV or yolov5: the CLI sets these flags up,
and answers ``--help`` and argument errors, at once (``kwargs_for`` imports yolov5 when a command
runs).
"""

from __future__ import annotations

import argparse

from .layers import LAYERS_HELP
from .methods import CAM_CLASSES, methods_help
from .options import DEFAULTS as D
from .style import COLORMAP_NAMES, Style
from .targets import TARGETS


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument('--line-thickness', type=int, default=None, help='box line width (pixels; default: by image size)')
    add_figure_arguments(p)
    p.add_argument('--attention-maps', action='store_true',
                   help="also save each attention block's spatial gate per image (CBAM, CoordAtt, SimAM, ...)")
    p.add_argument('--save-video', action='store_true',
                   help='video sources: also write <video>.mp4 of the frames with every box over their maps')
    p.add_argument('--project', default='runs/heatmap', help='save to project/name')
    p.add_argument('--name', default='exp', help='save to project/name')
    p.add_argument('--exist-ok', action='store_true', help='reuse project/name if it is empty')


def add_model_arguments(p: argparse.ArgumentParser, max_det: int,
                        max_det_help: str = 'maximum detections per image') -> None:
    """The flags of what the model is asked, shared by heatmap, heatmap-eval and heatmap-compare
    (defaults from ``options.DEFAULTS``; ``max_det``: the command's own)."""
    p.add_argument('--imgsz', '--img', '--img-size', type=int, default=D.imgsz, help='inference size (pixels)')
    p.add_argument('--target', default=D.target, choices=list(TARGETS),
                   help='conf: objectness; class: class probability; score: objectness x class probability')
    p.add_argument('--layers', default=D.layers, help=LAYERS_HELP)
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


def kwargs_for(run_fn, args) -> dict:
    """The ``run_fn(**kwargs)`` arguments of a parsed command line: the flags ``run_fn`` takes
    (global options such as ``--import`` are the CLI's), ``--device`` through yolov5's
    ``select_device``. Shared by heatmap, heatmap-eval and heatmap-compare."""
    import inspect

    from yolov5.utils.torch_utils import select_device
    takes = inspect.signature(run_fn).parameters
    kwargs = {k: v for k, v in vars(args).items() if k in takes}
    kwargs['device'] = select_device(kwargs['device'])
    return kwargs
