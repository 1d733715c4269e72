"""``yolo-attn heatmap``: one saliency PNG per detection, an overview per image, a manifest.

``run(**kwargs)`` mirrors the CLI flags. Results go to a new ``runs/heatmap/exp*`` folder (an
existing one is never written into); the manifest is rewritten after every image, so it is valid
when a run is cut short. Outputs: docs/heatmaps.md, "Outputs".
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserError
from ..guards.outputs import save_npy, write_json
from ..guards.paths import PROJECTS, RUN_NAME, claim_run_dir
from .api import explain, load_model
from .attention_maps import attention_layers
from .layers import normalise as normalise_layers
from .layers import resolve as resolve_layers
from .figures import Style, enlarge, heat, overlay, overview
from .methods import NOT_PER_DETECTION, per_detection
from .naming import level_names, output_stem
from .options import DEFAULTS as D
from .options import HeatmapOptions
from . import shard

LOGGER = logging.getLogger('yolov5')


def new_run_dir(project, name, exist_ok=False) -> Path:
    """A new run folder, claimed atomically inside ``project`` (``guards.paths.claim_run_dir``)."""
    return claim_run_dir(project, name, exist_ok)


def write(path: Path, image) -> str:
    if not cv2.imwrite(str(path), image):
        raise UserError(f'cannot write {path}')
    return str(path)


def run(weights, source, *, imgsz=D.imgsz, method=D.method, target=D.target, layers=D.layers,
        conf_thres=D.conf_thres, iou_thres=D.iou_thres, classes=D.classes, agnostic_nms=D.agnostic_nms,
        max_det=D.max_det, device=D.device, batch=D.batch, vid_stride=D.vid_stride, renorm_in_box=D.renorm_in_box,
        save_maps=False, project=PROJECTS['heatmap'], name=RUN_NAME, exist_ok=False, line_thickness=Style.line_thickness,
        alpha=Style.alpha, colormap=Style.colormap, hide_labels=Style.hide_labels, hide_conf=Style.hide_conf,
        scale=Style.scale, attention_maps=D.attention_maps, save_video=False, html=True, nms_free=False):
    """Write heatmaps for every detection of every image; return the manifest dict. The keywords
    are the flags' (``options.HeatmapOptions`` holds the defaults of what is computed, ``figures.Style``
    those of the figures); ``html``: also ``index.html``, the report page (``report.heatmap``)."""
    if shard.active():  # under torchrun: each rank its share of the images, merged by rank 0 (one page)
        return shard.heatmap(run, {**locals(), 'html': False}, new_run_dir,
                             functools.partial(save_manifest, html=html))
    style = figure_style(alpha, colormap, hide_labels, hide_conf, line_thickness, scale)
    options = HeatmapOptions.of(imgsz=imgsz, method=method, target=target, layers=normalise_layers(layers),
                                conf_thres=conf_thres, iou_thres=iou_thres, classes=classes, agnostic_nms=agnostic_nms,
                                max_det=max_det, device=device, batch=batch, vid_stride=vid_stride,
                                renorm_in_box=renorm_in_box, attention_maps=attention_maps)
    # a target the head lacks (conf without objectness) or --nms-free without such a head: refused before any folder
    model = load_model(weights, device, end2end=True if nms_free else None, target=target)
    if not per_detection(method):
        LOGGER.warning(f'WARNING: --method {method} is {NOT_PER_DETECTION}: it shows what the layer responds to, '
                       'not what each detection used; choose a gradient-based method for per-detection maps')
    plan = resolve_layers(model, options.layers)  # roles or indices (layers.py); refused before any folder is made
    save_dir = new_run_dir(project, name, exist_ok)
    levels = level_names(model)
    backend = model_backend(model)
    print(f'backend: {backend}; layers: {plan.describe()}')
    manifest = {'weights': str(weights), 'backend': backend, 'method': method, 'per_detection': per_detection(method),
                'target': target, 'imgsz': imgsz, 'layers': plan.to_json(),
                'conf_thres': conf_thres, 'iou_thres': iou_thres, 'renorm_in_box': renorm_in_box,
                'style': vars(style), 'head_levels': levels, 'complete': False, 'images': [], 'skipped': []}
    if attention_maps:
        manifest['attention_layers'] = attention_layers(model)
        if not manifest['attention_layers']:
            LOGGER.warning(f'WARNING: --attention-maps: {weights} has no registered attention block')
    videos = VideoWriters(save_dir, vid_stride) if save_video else None
    seen, constant, t_write, t0 = {}, 0, 0.0, time.time()
    try:
        for image in explain(model, source, options=options.of(options, layers=plan), progress=True,
                             on_skip=lambda path, why: manifest['skipped'].append({'path': path, 'reason': why})):
            t = time.time()
            stem = output_stem(image.path, image.frame)
            seen[stem] = seen.get(stem, 0) + 1
            stem = stem if seen[stem] == 1 else f'{stem}_{seen[stem]}'  # the same name in two folders
            entry = {'path': image.path, 'frame': image.frame, 'height': image.shape[0], 'width': image.shape[1],
                     'overview': write(save_dir / f'{stem}.png', overview(image.image, image.detections, style)),
                     'detections': []}
            most = None  # --save-video: the maximum of the frame's maps, accumulated one map at a time
            for k, det in enumerate(image.detections):
                png = save_dir / f'{stem}_{k:03d}_{det.name}.png'
                cam = det.map  # original size, made now and dropped after this detection (engine.Detection)
                item = {'index': k, 'box_xyxy': det.box, 'class_id': det.cls, 'class_name': det.name,
                        'objectness': det.objectness, 'class_prob': det.class_prob, 'score': det.score,
                        'head_level': levels[det.level], 'anchor': det.anchor, 'cell': list(det.cell),
                        'raw_index': det.index, 'target': target, 'method': method,
                        'layers': plan.for_level(det.level),
                        'png': write(png, overlay(image.image, det, style,
                                                  [d.box for d in image.detections if d is not det], cam)),
                        'energy_in_box': round(det.energy_in_box, 6), 'constant_map': det.constant}
                if save_maps:
                    save_npy(png.with_suffix('.npy'), cam)
                    item['npy'] = str(png.with_suffix('.npy'))
                if det.constant:
                    constant += 1
                    LOGGER.warning(f'WARNING: {png.name}: the map is constant (no gradient reached layers '
                                   f'{item["layers"]}); kept and flagged in the manifest')
                entry['detections'].append(item)
                if videos is not None and image.frame is not None:
                    most = cam if most is None else np.maximum(most, cam, out=most)
                del cam
            if image.attention_maps is not None:  # read during the heatmaps' own forward (engine.py)
                entry['attention_maps'] = write_gates(image.attention_maps, image.image, save_dir, stem, style)
            if videos is not None and image.frame is not None:
                entry['video'] = videos.add(image.path, overview(image.image, image.detections, style, most))
            manifest['images'].append(entry)
            t_write += time.time() - t
            save_manifest(save_dir, manifest, t0, t_write, html=html)
        manifest['complete'] = True
    except KeyboardInterrupt:
        manifest['interrupted'] = True  # the manifest below lists the images finished before Ctrl-C
        raise
    finally:
        if videos is not None:
            videos.close()
        save_manifest(save_dir, manifest, t0, t_write, html=html, final=True)
    n = sum(len(i['detections']) for i in manifest['images'])
    print(f"{n} detection heatmaps for {len(manifest['images'])} images ({constant} constant) saved to {save_dir}; "
          f"manifest {save_dir / 'heatmaps.json'}")
    manifest['save_dir'] = str(save_dir)
    return manifest


def model_backend(model) -> str:
    """``yolov5`` or ``ultralytics <version>``: the framework whose head and NMS the run uses."""
    from .heads import is_ultralytics
    if not is_ultralytics(model):
        return 'yolov5'
    import ultralytics
    return f'ultralytics {ultralytics.__version__}'


def figure_style(*args) -> Style:
    """``figures.Style`` from the figure flags (positional, in its field order); a bad value is an
    ``OptionError`` naming the flag's option (one line from the CLI)."""
    return Style(*args)


def save_manifest(save_dir: Path, manifest: dict, t0: float, t_write: float, html: bool = True,
                  final: bool = False) -> None:
    """Write ``heatmaps.json`` whole to a temporary file, then rename it over the old one: a reader
    never sees half a manifest, also when the run is interrupted. ``html``: ``index.html`` too, the
    same way (``report.heatmap.write``: paced while the run goes on, always when ``final``)."""
    manifest['seconds'] = {'total': round(time.time() - t0, 3), 'writing_files': round(t_write, 3)}
    write_json(save_dir / 'heatmaps.json', manifest)  # guards.outputs: atomic; a failed write keeps the last one
    if html:
        from ..report import heatmap as report_page
        report_page.write(save_dir, manifest, final=final)


def write_gates(gates, image, save_dir: Path, stem: str, style: Style) -> list[dict]:
    """One PNG per attention block with a spatial gate (``<stem>_attn<layer>_<Block>.png``), and the
    manifest entries: the blocks without one get their note instead of a PNG."""
    out = []
    for g in gates:
        item = {'layer': g.layer, 'block': g.block, 'stride': g.stride, 'gate_min': g.gate_min,
                'gate_max': g.gate_max}
        if g.map is None:
            item['note'] = g.note
        else:
            item['png'] = write(save_dir / f'{stem}_attn{g.layer:02d}_{g.block}.png',
                                heat(enlarge(image, style.scale), enlarge(g.map, style.scale), style))
        out.append(item)
    return out


class VideoWriters:
    """``--save-video``: one ``<video>.mp4`` per source video (mp4v, as detect.py writes), at the
    source's frame rate divided by ``vid_stride``."""

    def __init__(self, save_dir: Path, vid_stride: int):
        self.save_dir, self.vid_stride, self.open = save_dir, vid_stride, {}

    def add(self, path: str, frame: np.ndarray) -> str:
        if path not in self.open:
            cap = cv2.VideoCapture(path)
            fps = (cap.get(cv2.CAP_PROP_FPS) or 30) / self.vid_stride
            cap.release()
            out = self.save_dir / f'{Path(path).stem}.mp4'
            h, w = frame.shape[:2]
            self.open[path] = (cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*'mp4v'), fps, (w, h)), str(out))
        writer, out = self.open[path]
        writer.write(frame)
        return out

    def close(self):
        for writer, _ in self.open.values():
            writer.release()
