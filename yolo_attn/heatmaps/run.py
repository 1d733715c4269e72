"""``yolo-attn heatmap``: write one saliency PNG per detection, an overview per image, a manifest.

``run(**kwargs)`` mirrors the CLI flags, as yolov5's scripts do. Results go to a new
``runs/heatmap/exp``, ``exp2``, ... (an existing folder is never written into or deleted).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from .api import explain, load_model
from .engine import DEFAULT_METHOD, METHODS
from .targets import TARGETS

LOGGER = logging.getLogger('yolov5')


def overlay(image_bgr, det, line_width=None):
    """grad-cam's ``show_cam_on_image`` with the detection's box and label drawn by yolov5's Annotator."""
    from pytorch_grad_cam.utils.image import show_cam_on_image
    from yolov5.utils.plots import Annotator, colors
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    vis = cv2.cvtColor(show_cam_on_image(rgb, det.map, use_rgb=True), cv2.COLOR_RGB2BGR)
    annotator = Annotator(np.ascontiguousarray(vis), line_width=line_width)
    annotator.box_label(det.box, f'{det.name} {det.score:.2f}', color=colors(det.cls, True))
    return annotator.result()


def overview(image_bgr, detections, line_width=None):
    from yolov5.utils.plots import Annotator, colors
    annotator = Annotator(np.ascontiguousarray(image_bgr.copy()), line_width=line_width)
    for k, det in enumerate(detections):
        annotator.box_label(det.box, f'{k}: {det.name} {det.score:.2f}', color=colors(det.cls, True))
    return annotator.result()


def new_run_dir(project, name, exist_ok=False) -> Path:
    from yolov5.utils.general import increment_path
    target = Path(project) / name
    if exist_ok and target.is_dir() and any(target.iterdir()):
        raise UserError(f'{target} already holds results and --exist-ok would write into it; choose another --name')
    save_dir = increment_path(target, exist_ok=exist_ok)
    save_dir.mkdir(parents=True, exist_ok=True)
    return save_dir


def write(path: Path, image) -> str:
    if not cv2.imwrite(str(path), image):
        raise UserError(f'cannot write {path}')
    return str(path)


def run(weights='yolov5s.pt', source='data/images', imgsz=640, method=DEFAULT_METHOD, target='score', layers=None,
        conf_thres=0.25, iou_thres=0.45, classes=None, agnostic_nms=False, max_det=1000, device='cpu', batch=1,
        vid_stride=1, renorm_in_box=False, save_maps=False, project='runs/heatmap', name='exp', exist_ok=False,
        line_thickness=None):
    """Write heatmaps for every detection of every image; return the manifest dict."""
    model = load_model(weights, device)
    save_dir = new_run_dir(project, name, exist_ok)
    manifest = {'weights': str(weights), 'method': method, 'target': target, 'imgsz': imgsz,
                'layers': list(model.model[-1].f) if layers is None else [int(i) for i in layers],
                'conf_thres': conf_thres, 'iou_thres': iou_thres, 'images': []}
    seen, constant, t_write, t0 = {}, 0, 0.0, time.time()
    for image in explain(model, source, imgsz, method, target, layers, conf_thres, iou_thres, classes, agnostic_nms,
                         max_det, device, batch, vid_stride, renorm_in_box, progress=True):
        stem = Path(image.path).stem
        seen[stem] = seen.get(stem, 0) + 1
        stem = stem if seen[stem] == 1 else f'{stem}_{seen[stem]}'  # video frames, same names in two folders
        t = time.time()
        entry = {'path': image.path, 'height': image.shape[0], 'width': image.shape[1],
                 'overview': write(save_dir / f'{stem}.png', overview(image.image, image.detections, line_thickness)),
                 'detections': []}
        for k, det in enumerate(image.detections):
            png = save_dir / f'{stem}_{k:03d}_{det.name}.png'
            item = {'index': k, 'box_xyxy': det.box, 'class_id': det.cls, 'class_name': det.name,
                    'objectness': det.objectness, 'class_prob': det.class_prob, 'score': det.score,
                    'head_level': det.level, 'anchor': det.anchor, 'cell': list(det.cell), 'raw_index': det.index,
                    'target': target, 'method': method, 'layers': manifest['layers'],
                    'png': write(png, overlay(image.image, det, line_thickness)),
                    'energy_in_box': round(det.energy_in_box, 6), 'constant_map': det.constant}
            if save_maps:
                np.save(png.with_suffix('.npy'), det.map.astype(np.float32))
                item['npy'] = str(png.with_suffix('.npy'))
            if det.constant:
                constant += 1
                LOGGER.warning(f'WARNING: {png.name}: the map is constant (no gradient reached layers '
                               f'{manifest["layers"]}); kept and flagged in the manifest')
            entry['detections'].append(item)
        manifest['images'].append(entry)
        t_write += time.time() - t
    manifest['seconds'] = {'total': round(time.time() - t0, 3), 'writing_files': round(t_write, 3)}
    (save_dir / 'heatmaps.json').write_text(json.dumps(manifest, indent=2))
    n = sum(len(i['detections']) for i in manifest['images'])
    print(f"{n} detection heatmaps for {len(manifest['images'])} images ({constant} constant) saved to {save_dir}; "
          f"manifest {save_dir / 'heatmaps.json'}")
    manifest['save_dir'] = str(save_dir)
    return manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--weights', required=True, help='model checkpoint (.pt), loaded securely')
    p.add_argument('--source', required=True, help='image, folder, glob, video or .txt list')
    p.add_argument('--imgsz', '--img', '--img-size', type=int, default=640, help='inference size (pixels)')
    p.add_argument('--method', default=DEFAULT_METHOD, choices=list(METHODS), help='pytorch-grad-cam weighting')
    p.add_argument('--target', default='score', choices=list(TARGETS),
                   help='conf: objectness; class: class probability; score: objectness x class probability')
    p.add_argument('--layers', default=None, help='comma-separated layer indices (default: the inputs of Detect)')
    p.add_argument('--conf-thres', type=float, default=0.25, help='confidence threshold')
    p.add_argument('--iou-thres', type=float, default=0.45, help='NMS IoU threshold')
    p.add_argument('--classes', nargs='+', type=int, help='filter by class: --classes 0, or --classes 0 2 3')
    p.add_argument('--agnostic-nms', action='store_true', help='class-agnostic NMS')
    p.add_argument('--max-det', type=int, default=1000, help='maximum detections per image')
    p.add_argument('--device', default='cpu', help='cpu or cuda device, i.e. 0')
    p.add_argument('--batch', type=int, default=1, help='images per forward pass')
    p.add_argument('--vid-stride', type=int, default=1, help='video frame-rate stride')
    p.add_argument('--renorm-in-box', action='store_true', help='normalise each map inside its box, zero outside')
    p.add_argument('--save-maps', action='store_true', help='also save each raw map as float32 .npy (original size)')
    p.add_argument('--line-thickness', type=int, default=None, help='box line width (pixels)')
    p.add_argument('--project', default='runs/heatmap', help='save to project/name')
    p.add_argument('--name', default='exp', help='save to project/name')
    p.add_argument('--exist-ok', action='store_true', help='reuse project/name if it is empty')


def run_from_args(args) -> int:
    kwargs = vars(args).copy()
    for k in ('command', 'func'):
        kwargs.pop(k, None)
    if kwargs['layers']:
        try:
            kwargs['layers'] = [int(v) for v in str(kwargs['layers']).split(',') if v.strip()]
        except ValueError:
            raise UserError(f"--layers {args.layers!r}: expected comma-separated layer indices, e.g. 17,20,23") from None
    from yolov5.utils.torch_utils import select_device
    kwargs['device'] = select_device(kwargs['device'])
    run(**kwargs)
    return 0
