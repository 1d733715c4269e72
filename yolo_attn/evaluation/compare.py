"""``yolo-attn heatmap-compare``: the same objects, explained by several models, side by side.

Every model sees the same images (``explain()``, same method, target and thresholds). The first
model's detections are the reference; an *object* is a reference detection that every other model
also detects (same class, IoU >= ``match_iou``, greedy by score — ``matching.greedy_match``). For
each object one panel PNG holds each model's map on the image with its own box (the ``overlay`` of
``yolo-attn heatmap``), cropped around the object with ``context`` times its size of margin (or the
whole image with ``full_image``), each under the model's name.

Metrics per model over the same objects, each detection against its own box: pointing game,
energy-based pointing game and, with ``steps`` >= 1, deletion and insertion AUC (``perturb``).
Outputs in a new ``runs/heatmap-compare/exp``, …: ``<image>_<k>_<class>.png`` per object,
``objects.csv`` (one row per object and model), ``metrics.csv`` (one row per model).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..heatmaps.api import load_model, open_source
from ..heatmaps.run import new_run_dir, overlay, write
from . import options, report
from .evaluate import explain_each
from .matching import greedy_match
from .metrics import energy_pointing_game, pointing_game
from .perturb import Perturber

PANEL_HEIGHT = 256  # pixels of each model's crop in a panel
TITLE = 24  # pixels of the strip above each crop that names the model


def model_labels(weights) -> list[str]:
    """Short distinct names: the file stems, or as many trailing path parts as it takes to tell them apart."""
    parts = [Path(str(w)).with_suffix('').parts for w in weights]
    for n in range(1, max(len(p) for p in parts) + 1):
        labels = ['/'.join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [f'{i}:{w}' for i, w in enumerate(weights)]


def check_same_classes(models, weights) -> None:
    names = [list((m.names if isinstance(m.names, dict) else dict(enumerate(m.names))).values()) for m in models]
    for w, n in zip(weights[1:], names[1:]):
        if n != names[0]:
            show = lambda v: f"{len(v)} classes ({', '.join(map(str, v[:4]))}{', …' if len(v) > 4 else ''})"
            raise UserError(f'{weights[0]} has {show(names[0])} but {w} has {show(n)}: heatmap-compare needs models '
                            'trained on the same classes')


def crop_box(dets, shape, context) -> tuple[int, int, int, int]:
    """Pixel window around the union of an object's boxes, ``context`` x its size of margin on each side."""
    h, w = shape[:2]
    b = np.array([d.box for d in dets])
    x1, y1, x2, y2 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    m = context * max(x2 - x1, y2 - y1, 16)
    return (int(max(x1 - m, 0)), int(max(y1 - m, 0)), int(min(x2 + m, w)), int(min(y2 + m, h)))


def panel(image, dets, labels, context=1.0, full_image=False, line_width=None) -> np.ndarray:
    """One object: each model's overlay (map, box, label) side by side under its model's name."""
    x1, y1, x2, y2 = (0, 0, image.shape[1], image.shape[0]) if full_image else crop_box(dets, image.shape, context)
    tiles = []
    for det, label in zip(dets, labels):
        tile = overlay(image, det, line_width)[y1:y2, x1:x2]
        scale = PANEL_HEIGHT / tile.shape[0]
        tile = cv2.resize(tile, (max(round(tile.shape[1] * scale), 1), PANEL_HEIGHT), interpolation=cv2.INTER_LINEAR)
        strip = np.full((TITLE, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, label, (4, TITLE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles += [np.vstack((strip, tile)), np.full((PANEL_HEIGHT + TITLE, 4, 3), 255, np.uint8)]
    return np.hstack(tiles[:-1])


def run(weights=(), source='data/images', imgsz=640, method='elementwise', target='score', layers=None,
        conf_thres=0.25, iou_thres=0.45, max_det=300, match_iou=0.5, steps=20, baseline='blur', batch=8,
        max_images=None, context=1.0, full_image=False, line_thickness=None, device='cpu',
        project='runs/heatmap-compare', name='exp', exist_ok=False) -> dict:
    """Compare the heatmaps of two or more models on the same images; write panels and tables."""
    weights = [str(w) for w in weights]
    if len(weights) < 2:
        raise UserError('--weights: give two or more checkpoints to compare (A.pt B.pt …)')
    chosen = options.methods(method)
    if len(chosen) != 1:
        raise UserError(f'--method {method}: heatmap-compare shows one method at a time '
                        '(heatmap-eval compares methods)')
    method = chosen[0]
    layers = options.layers(layers)
    models = [load_model(w, device) for w in weights]
    check_same_classes(models, weights)
    files = open_source(source, imgsz, int(models[0].stride.max())).files[:max_images]
    labels = model_labels(weights)
    perturbers = [Perturber(m, imgsz, steps, baseline, batch, match_iou) for m in models] if steps else []
    save_dir = new_run_dir(project, name, exist_ok)
    opts = dict(imgsz=imgsz, target=target, layers=layers, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det,
                device=device)
    streams = [explain_each(m, files, method, opts) for m in models]
    rows, objects = [], 0
    for results in tqdm(zip(*streams), total=len(files), desc='heatmap-compare', unit='image'):
        ref = results[0].detections
        matches = [greedy_match([d.box for d in ref], [d.cls for d in ref], [d.score for d in ref],
                                [d.box for d in r.detections], [d.cls for d in r.detections], match_iou)
                   for r in results[1:]]
        keep = [i for i in sorted(range(len(ref)), key=lambda i: -ref[i].score) if all(i in m for m in matches)]
        groups = [[ref[i]] + [r.detections[m[i][0]] for r, m in zip(results[1:], matches)] for i in keep]
        ious = [[1.0] + [m[i][1] for m in matches] for i in keep]
        curves = [p.curves(results[0].image, [(g[j].map, g[j].cls, g[j].box) for g in groups])
                  for j, p in enumerate(perturbers)]
        stem = Path(results[0].path).stem
        for k, (group, iou) in enumerate(zip(groups, ious)):
            png = write(save_dir / f'{stem}_{k:03d}_{group[0].name}.png',
                        panel(results[0].image, group, labels, context, full_image, line_thickness))
            objects += 1
            for j, det in enumerate(group):
                c = curves[j][k] if curves else None
                rows.append({'image': results[0].path, 'object': k, 'model': labels[j], 'weights': weights[j],
                             'class_name': det.name, 'level_name': report.level_name(det.level), 'score': det.score,
                             'x1': det.box[0], 'y1': det.box[1], 'x2': det.box[2], 'y2': det.box[3],
                             'iou_to_first': iou[j], 'pointing_game': int(pointing_game(det.map, det.box)),
                             'energy_pg': energy_pointing_game(det.map, det.box), 'constant_map': det.constant,
                             'deletion_auc': c.deletion_auc if c else float('nan'),
                             'insertion_auc': c.insertion_auc if c else float('nan'), 'panel': png})
    metrics = [{'model': label, 'weights': w, **report.aggregate([r for r in rows if r['model'] == label])}
               for label, w in zip(labels, weights)]
    report.write_csv(rows, save_dir / 'objects.csv', columns=None if rows else ['image', 'object', 'model'])
    report.write_csv(metrics, save_dir / 'metrics.csv')
    print(f'{len(files)} images, {objects} objects detected by all {len(models)} models ({method}, {target} target)')
    print(report.markdown(metrics, ['model', 'detections', *report.METRICS]))
    print(f'{objects} panels, objects.csv and metrics.csv saved to {save_dir}')
    return {'save_dir': str(save_dir), 'objects': objects, 'metrics': metrics}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--weights', nargs='+', required=True, help='two or more checkpoints (.pt) with the same classes')
    p.add_argument('--source', required=True, help='image, folder, glob or .txt list')
    p.add_argument('--method', default='elementwise', help='pytorch-grad-cam weighting (one)')
    options.add_common(p, 'runs/heatmap-compare')
    p.add_argument('--context', type=float, default=1.0, help='margin around each object, in object sizes')
    p.add_argument('--full-image', action='store_true', help='panels show the whole image, not a crop')
    p.add_argument('--line-thickness', type=int, default=None, help='box line width (pixels)')


def run_from_args(args) -> int:
    run(**options.kwargs_from(args))
    return 0
