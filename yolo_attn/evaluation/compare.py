"""``yolo-attn heatmap-compare``: the same objects, explained by several models, side by side.

An object is a detection of any model, matched across models by class and IoU (``group_objects``,
``matching.greedy_match``). Per object, one panel PNG shows each model's crop, map, box and label
(``figures.tile``), or the object's box dashed in red where that model missed it. Per model: pointing
game, energy-based pointing game and, with ``steps`` >= 1, deletion/insertion AUC (``perturb``).
Outputs: panels, ``objects.csv``, ``metrics.csv`` (averaged over objects every model detected) and
``manifest.json`` (``report.Record``: valid when a run is cut short). See docs/metrics.md.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..guards.images import UNREADABLE, is_file
from ..heatmaps.api import load_model, open_source
from ..heatmaps.engine import class_names
from ..heatmaps.options import DEFAULTS as D  # what is computed: its defaults written once
from ..heatmaps.figures import MISSED_COLOR, Style, tile
from ..heatmaps.layers import normalise as normalise_layers
from ..heatmaps.layers import resolve as resolve_layers
from ..heatmaps.methods import NOT_PER_DETECTION, per_detection
from ..heatmaps.naming import level_names
from ..guards.paths import PROJECTS, RUN_NAME
from ..heatmaps.runner import figure_style, new_run_dir, write
from ..report import compare as report_page
from . import options, report
from . import shard as sharded
from .options import EVAL as E
from .options import explain_each  # shared with heatmap-eval (compare does not import evaluate)
from .matching import greedy_match
from .metrics import energy_pointing_game, pointing_game
from .perturb import Perturber

OBJECT_COLUMNS = ['image', 'object', 'model']  # objects.csv's header when no object was found
PANEL_HEIGHT = 256  # pixels of each model's crop in a panel
TITLE = 42  # pixels of the strip above each crop: the model's name, its layers (or MISSED)


def model_labels(weights) -> list[str]:
    """Short distinct names: the file stems, or as many trailing path parts as it takes to tell them apart."""
    parts = [Path(str(w)).with_suffix('').parts for w in weights]
    for n in range(1, max(len(p) for p in parts) + 1):
        labels = ['/'.join(p[-n:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [f'{i}:{w}' for i, w in enumerate(weights)]


def check_same_classes(models, weights) -> None:
    names = [list(class_names(m).values()) for m in models]
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


def group_objects(detections: list, match_iou=E.match_iou) -> list[list]:
    """Objects across models (module docstring): per object, each model's detection or None.
    ``detections[j]``: model j's detections of one image."""
    objects = [[d] + [None] * (len(detections) - 1) for d in sorted(detections[0], key=lambda d: -d.score)]
    for j, dets in enumerate(detections[1:], 1):
        refs = [next(d for d in o if d is not None) for o in objects]
        pairs = greedy_match([d.box for d in dets], [d.cls for d in dets], [d.score for d in dets],
                             [r.box for r in refs], [r.cls for r in refs], match_iou)
        for k, (i, _) in pairs.items():
            objects[i][j] = dets[k]
        for k in sorted(set(range(len(dets))) - set(pairs), key=lambda k: -dets[k].score):
            objects.append([None] * j + [dets[k]] + [None] * (len(detections) - j - 1))
    return objects


def layers_text(plan, det) -> str:
    """The layer indices ``det``'s map was taken from (``plan``: its model's resolved ``--layers``)."""
    return 'layers ' + ','.join(str(i) for i in plan.for_level(det.level))


def panel(image, group, labels, context=1.0, full_image=False, style=Style(), notes=None) -> np.ndarray:
    """One object: per model its tile (``figures.tile``) under a strip with the model's name and
    ``notes`` (e.g. its layers); a model whose entry in ``group`` is None gets the "missed" tile."""
    dets = [d for d in group if d is not None]
    window = (0, 0, image.shape[1], image.shape[0]) if full_image else crop_box(dets, image.shape, context)
    ref = dets[0]
    notes = notes or [''] * len(group)
    tiles, height = [], round(PANEL_HEIGHT * style.scale)
    for det, label, note in zip(group, labels, notes):
        t = tile(image, window, height, det, ref.box, style, missed='' if det is not None else
                 (f'missed {ref.name}' if not style.hide_labels else 'missed'))
        lines = [label, note if det is not None else 'MISSED']
        width = max([t.shape[1]] + [cv2.getTextSize(x, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0] + 8 for x in lines])
        if width > t.shape[1]:
            t = cv2.copyMakeBorder(t, 0, 0, 0, width - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
        strip = np.full((TITLE, width, 3), 255, np.uint8)
        for i, text in enumerate(lines):
            color = MISSED_COLOR if det is None and i == 1 else (0, 0, 0)
            cv2.putText(strip, text, (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
        tiles += [np.vstack((strip, t)), np.full((height + TITLE, 4, 3), 255, np.uint8)]
    return np.hstack(tiles[:-1])


def object_row(result, k, label, weights, det, ref, levels, plan, curve, png) -> dict:
    """One row of ``objects.csv``: one model's view of object ``k`` (``det`` None: missed); ``levels``:
    the model's head level names, ``plan`` its resolved layers."""
    from .matching import iou_matrix
    row = {'image': result.path, 'object': k, 'model': label, 'weights': weights, 'class_name': ref.name,
           'missed': int(det is None), 'panel': png}
    if det is None:
        return {**row, **{c: float('nan') for c in ('score', 'pointing_game', 'energy_pg', 'deletion_auc',
                                                     'insertion_auc')}}
    cam = det.map  # made on each read (engine.Detection): once here
    return {**row, 'level_name': levels[det.level],
            'score': det.score, 'x1': det.box[0], 'y1': det.box[1], 'x2': det.box[2], 'y2': det.box[3],
            'iou_to_reference': float(iou_matrix([det.box], [ref.box])[0, 0]), 'layers': layers_text(plan, det),
            'pointing_game': int(pointing_game(cam, det.box)), 'energy_pg': energy_pointing_game(cam, det.box),
            'constant_map': det.constant, 'deletion_auc': curve.deletion_auc if curve else float('nan'),
            'insertion_auc': curve.insertion_auc if curve else float('nan')}


def run(weights, source, imgsz=D.imgsz, method=D.method, target=D.target, layers=D.layers,
        conf_thres=D.conf_thres, iou_thres=D.iou_thres, max_det=E.max_det, match_iou=E.match_iou, steps=E.steps,
        baseline=E.baseline, batch=E.batch, protocol=E.protocol, box_multiple=E.box_multiple,
        max_images=E.max_images, context=E.context, full_image=E.full_image, line_thickness=Style.line_thickness,
        alpha=Style.alpha, colormap=Style.colormap, hide_labels=Style.hide_labels, hide_conf=Style.hide_conf,
        scale=Style.scale, device=E.device, project=PROJECTS['heatmap-compare'], name=RUN_NAME, exist_ok=False,
        html=True, nms_free=False) -> dict:
    """Compare the heatmaps of two or more models on the same images; write panels and tables (``html``:
    also ``index.html``, ``report.compare``)."""
    device = sharded.shard.device(device)  # torchrun on GPUs: cuda:LOCAL_RANK
    weights = [str(w) for w in weights]
    if len(weights) < 2:
        raise UserError('--weights: give two or more checkpoints to compare (A.pt B.pt …)')
    chosen = options.methods(method)
    if len(chosen) != 1:
        raise UserError(f'--method {method}: heatmap-compare shows one method at a time '
                        '(heatmap-eval compares methods)')
    method = chosen[0]
    style = figure_style(alpha, colormap, hide_labels, hide_conf, line_thickness, scale)
    layers = normalise_layers(layers)
    models = [load_model(w, device, end2end=True if nms_free else None, target=target) for w in weights]
    check_same_classes(models, weights)
    files = open_source(source, imgsz, int(models[0].stride.max())).files[:max_images]
    labels = model_labels(weights)
    levels = [level_names(m) for m in models]
    plans = [resolve_layers(m, layers) for m in models]  # per model: heatmap-compare --layers backbone compares roles
    for label, plan in zip(labels, plans):
        print(f'{label}: layers {plan.describe()}')
    perturbers = [Perturber(m, imgsz, steps, baseline, batch, match_iou, protocol=protocol,
                            box_multiple=box_multiple) for m in models] if steps else []
    save_dir = sharded.shard.run_dir(new_run_dir, project, name, exist_ok)  # torchrun: made by rank 0
    opts = dict(imgsz=imgsz, target=target, layers=layers, conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det,
                device=device)
    mine = sharded.shard.share(files)  # torchrun: this rank's images (all of them in one process)
    record = report.Record(save_dir if sharded.shard.is_main() else None, 'objects.csv', {
        'command': 'heatmap-compare', 'weights': weights, 'models': labels, 'source': str(source), 'method': method,
        'target': target, 'images': len(files), 'layers': [p.to_json() for p in plans]}, columns=OBJECT_COLUMNS)
    rows, objects, missed = [], 0, 0
    try:
        for path in tqdm(mine, desc='heatmap-compare', unit='image'):
            streams = [explain_each(m, [path], method, opts) for m in models] if is_file(path) else []
            done = False
            for results in zip(*streams):  # one image (or the frames of a video); nothing if it did not decode
                groups = group_objects([r.detections for r in results], match_iou)
                curves = [dict(zip([k for k, g in enumerate(groups) if g[j] is not None],
                                   p.curves(results[0].image, [(g[j].map, g[j].cls, g[j].box) for g in groups
                                                               if g[j] is not None])))
                          for j, p in enumerate(perturbers)]
                stem, image_rows = Path(results[0].path).stem, []
                for k, group in enumerate(groups):
                    ref = next(d for d in group if d is not None)
                    notes = [layers_text(plan, d) if d is not None else '' for d, plan in zip(group, plans)]
                    png = write(save_dir / f'{stem}_{k:03d}_{ref.name}.png',
                                panel(results[0].image, group, labels, context, full_image, style, notes))
                    objects += 1
                    missed += any(d is None for d in group)
                    image_rows += [object_row(results[j], k, labels[j], weights[j], det, ref, levels[j], plans[j],
                                              curves[j].get(k) if curves else None, png)
                                   for j, det in enumerate(group)]
                rows += image_rows
                record.image(results[0].path, image_rows, method)
                done = True
            if not done:
                record.skip(path, UNREADABLE)
        rows, objects, missed = sharded.compare(rows, objects, missed, record)
        if not sharded.shard.is_main():  # another torchrun rank: its panels are written, its rows are rank 0's
            return {'save_dir': str(save_dir), 'objects': objects, 'missed': missed}
        common = {(r['image'], r['object']) for r in rows} - {(r['image'], r['object']) for r in rows if r['missed']}
        metrics = [{'model': label, 'weights': w, **report.aggregate([r for r in rows if r['model'] == label and
                                                                       (r['image'], r['object']) in common]),
                    'missed': sum(r['missed'] for r in rows if r['model'] == label)}
                   for label, w in zip(labels, weights)]
        report.write_csv(metrics, save_dir / 'metrics.csv')
        if html:  # before close: a manifest saying complete lists every file
            report_page.write(save_dir, {**record.manifest, 'complete': True}, rows, metrics)
        record.close(rows=rows, files=['metrics.csv'] + (['index.html'] if html else []))
    except BaseException as e:  # Ctrl-C, a full disk, a crash: the record says how far the run got
        stopped = record.stopped(e)
        if html:
            report_page.stopped(record.save_dir, record)  # the page of what was done; never raises
        raise stopped from None
    skipped = record.manifest['skipped']
    print(f"{len(files)} images{f' ({len(skipped)} unreadable, skipped)' if skipped else ''}, {objects} objects "
          f'({objects - missed} detected by all {len(models)} models, '
          f'{missed} missed by at least one; {method}, {target} target)')
    if not per_detection(method):
        print(f'{method}: {NOT_PER_DETECTION}')
    print(report.markdown(metrics, ['model', 'detections', *report.METRICS, 'missed']))
    print(f'{objects} panels, objects.csv, metrics.csv, manifest.json' + (', index.html (the report page)' if html else '')
          + f' saved to {save_dir}')
    return {'save_dir': str(save_dir), 'objects': objects, 'missed': missed, 'metrics': metrics, 'skipped': skipped}
