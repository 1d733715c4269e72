"""``yolo-attn heatmap-eval``: how faithful are the heatmaps of a model on a labelled split?

Per method, each detection matched to a ground-truth box (``matching``) is scored with the pointing
game and energy-based pointing game (``metrics``), deletion and insertion curves (``perturb``) and,
for the first ``sanity_max``, the model-randomisation sanity check (``sanity``). Outputs:
``results.csv``, ``summary.csv``, ``sanity.csv``, ``curves.png``, ``manifest.json``
(``report.Record``: valid when a run is cut short). ``run(**kwargs)`` mirrors the CLI flags.
See docs/metrics.md.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..guards.images import UNREADABLE, is_file
from ..heatmaps.api import load_model
from ..heatmaps.engine import class_names
from ..heatmaps.options import DEFAULTS as D  # what is computed: its defaults written once
from ..heatmaps.layers import normalise as normalise_layers
from ..heatmaps.layers import resolve as resolve_layers
from ..heatmaps.methods import NOT_PER_DETECTION, per_detection
from ..heatmaps.naming import level_names
from ..guards.paths import PROJECTS, RUN_NAME
from ..heatmaps.runner import new_run_dir
from ..report import evaluation as report_page
from . import options, report
from . import shard as sharded
from .options import EVAL as E
from .options import explain_each
from .matching import greedy_match, read_labels, require_labels
from .metrics import energy_pointing_game, pointing_game
from .perturb import Perturber
from .sanity import RandomisedMaps, correlations, verdicts

LOGGER = logging.getLogger('yolov5')


def split_with_labels(data, split: str, max_images=None) -> tuple[dict, list]:
    """The data dict and the split's images (sorted, first ``max_images``); refuses a split without labels."""
    from ..integration.datasets import check_labels, load_data_yaml, split_images
    d = load_data_yaml(data)
    if not d.get(split):
        raise UserError(f'{data}: no {split}: entry; choose --split from the entries the data YAML has')
    images = sorted(split_images(d, split))[:max_images]
    if not images:
        raise UserError(f'{data}: no images found for {split}: {d[split]} (under {d["path"]})')
    require_labels(images, f'{data} {split}:')
    check_labels(images, len(d['names']))
    return d, images


def check_classes(model, data_names: dict, data) -> None:
    names = class_names(model)
    if len(names) != len(data_names):
        raise UserError(f'the weights have {len(names)} classes but {data} has {len(data_names)}: evaluate a model on '
                        'the data it was trained for')
    if list(names.values()) != list(data_names.values()):
        LOGGER.warning(f'WARNING: class names differ between the weights and {data}; the weights\' names are used')


def detection_row(image, det, level, gt_box, iou, method, target, curves, rhos) -> dict:
    cam = det.map  # made on each read (engine.Detection): once here
    row = {'image': image.path, 'method': method, 'target': target, 'class_id': det.cls, 'class_name': det.name,
           'level': det.level, 'level_name': level, 'score': det.score,
           'x1': det.box[0], 'y1': det.box[1], 'x2': det.box[2], 'y2': det.box[3],
           'gt_x1': gt_box[0], 'gt_y1': gt_box[1], 'gt_x2': gt_box[2], 'gt_y2': gt_box[3], 'iou_gt': iou,
           'pointing_game': int(pointing_game(cam, det.box)), 'energy_pg': energy_pointing_game(cam, det.box),
           'constant_map': det.constant, 'start_score': curves.start, 'empty_score': curves.empty,
           'perturbed_pixels': curves.budget, 'deletion_auc': curves.deletion_auc,
           'insertion_auc': curves.insertion_auc,
           'sanity_rho': rhos[0], 'sanity_rho_partial': rhos[1], 'sanity_rho_prior': rhos[2]}
    row.update({f'deletion_{k}': v for k, v in enumerate(curves.deletion)})
    row.update({f'insertion_{k}': v for k, v in enumerate(curves.insertion)})
    return row


def evaluate_method(model, images, method, perturber, opts, sanity_max, record=None) -> tuple[list, dict, dict]:
    """``(rows, checks, counts)`` of one method: matched detections' rows, the sanity check's inputs
    (``rhos``, ``levels``, ``constant``) and counts (``images`` done, ``skipped``). Finished images go
    to ``record``; an image that does not decode is skipped once per run, with one warning line."""
    randomised = RandomisedMaps(model, method, opts['target'], opts['layers']) if sanity_max else None
    names = level_names(model)
    record = record or report.Record(None, 'results.csv', {})
    rows, checks = [], {'rhos': [], 'levels': [], 'constant': []}
    counts = {'detections': 0, 'ground_truth': 0, 'curve_seconds': [], 'curve_detections': [], 'images': [],
              'skipped': []}
    for path in tqdm(images, desc=f'heatmap-eval {method}', unit='image'):
        image = None
        if not record.skipped(path) and is_file(path):
            image = next(iter(list(explain_each(model, [path], method, opts))), None)  # None: it did not decode
        if image is None:
            if not record.skipped(path):
                record.skip(path, UNREADABLE)
            counts['skipped'].append({'path': str(path), 'reason': UNREADABLE})
            continue
        gt_cls, gt_boxes = read_labels(image.path, image.shape)
        dets = image.detections
        counts['detections'] += len(dets)
        counts['ground_truth'] += len(gt_cls)
        pairs = greedy_match([d.box for d in dets], [d.cls for d in dets], [d.score for d in dets], gt_boxes, gt_cls,
                             opts['match_iou'])
        matched = [(dets[i], gt_boxes[j], iou) for i, (j, iou) in sorted(pairs.items())]
        start = time.perf_counter()
        curves = perturber.curves(image.image, [(d.map, d.cls, d.box) for d, _, _ in matched])
        counts['curve_seconds'].append(time.perf_counter() - start)  # deletion + insertion of this image
        counts['curve_detections'].append(len(matched))
        checked = [d for d, _, _ in matched][:max(sanity_max - len(checks['rhos']), 0)] if randomised else []
        other = randomised(perturber.letterbox(image.image)[None], image.image, checked) if checked else []
        image_rows = []
        for k, ((det, gt_box, iou), c) in enumerate(zip(matched, curves)):
            rhos = (float('nan'),) * 3
            if k < len(other):
                rhos = correlations(det.map, other[k], det.box)
                checks['rhos'].append(rhos)
                checks['levels'].append(names[det.level])
                checks['constant'].append(det.constant)
            image_rows.append(detection_row(image, det, names[det.level], gt_box, iou, method, opts['target'], c,
                                            rhos))
        rows += image_rows
        counts['images'].append(image.path)
        record.image(image.path, image_rows, method)
    return rows, checks, counts


def run(weights, data, split='val', imgsz=D.imgsz, method=D.method, target=D.target, layers=D.layers,
        conf_thres=D.conf_thres, iou_thres=D.iou_thres, max_det=E.max_det, match_iou=E.match_iou, steps=E.steps,
        baseline=E.baseline, batch=E.batch, protocol=E.protocol, box_multiple=E.box_multiple,
        max_images=E.max_images, sanity=E.sanity, sanity_threshold=E.sanity_threshold,
        sanity_partial_threshold=E.sanity_partial_threshold, sanity_max=E.sanity_max, device=E.device,
        project=PROJECTS['heatmap-eval'], name=RUN_NAME, exist_ok=False, html=True, nms_free=False) -> dict:
    """Evaluate the heatmaps of ``weights`` on ``data``'s ``split``; write the outputs (``html``: also
    ``index.html``, ``report.evaluation``); return the summary."""
    device = sharded.shard.device(device)  # torchrun on GPUs: cuda:LOCAL_RANK
    methods = options.methods(method)
    if steps < 1:
        raise UserError('--steps must be at least 1 (deletion and insertion need a start and an end)')
    d, images = split_with_labels(data, split, max_images)
    model = load_model(weights, device, end2end=True if nms_free else None, target=target)
    check_classes(model, d['names'], data)
    plan = resolve_layers(model, normalise_layers(layers))  # refused here, before any folder is made
    perturber = Perturber(model, imgsz, steps, baseline, batch, match_iou, protocol=protocol,
                          box_multiple=box_multiple)
    save_dir = new_run_dir(project, name, exist_ok) if sharded.shard.is_main() else None  # torchrun: rank 0 writes
    print(f'layers: {plan.describe()}')
    opts = dict(imgsz=imgsz, target=target, layers=normalise_layers(layers), conf_thres=conf_thres,
                iou_thres=iou_thres, max_det=max_det, match_iou=match_iou, device=device)
    record = report.Record(save_dir, 'results.csv', {
        'command': 'heatmap-eval', 'weights': str(weights), 'data': str(data), 'split': split, 'methods': methods,
        'images': len(images), 'layers': plan.to_json(), 'steps': steps, 'protocol': protocol}, columns=COLUMNS)
    try:
        result = evaluate_all(model, images, methods, perturber, opts, record, dict(locals()))
    except BaseException as e:  # Ctrl-C, a full disk, a crash: the record says how far the run got
        stopped = record.stopped(e)
        if html:
            report_page.stopped(save_dir, record)  # the page of what was done; never raises
        raise stopped from None
    return result


COLUMNS = ['image', 'method']  # the table's header when nothing matched


def evaluate_all(model, images, methods, perturber, opts, record, a: dict) -> dict:
    """Every method on every image, then the summary tables, the curves and the printed report
    (``a``: ``run``'s arguments); ``record`` keeps results.csv and manifest.json valid meanwhile."""
    steps, sanity, save_dir = a['steps'], a['sanity'], a['save_dir']
    rows, checked, curves, counts, seconds, per_image = [], [], {}, {}, [], []
    for m in methods:
        method_rows, checks, counts = sharded.evaluate(evaluate_method, model, images, m, perturber, opts,
                                                       a['sanity_max'] if sanity else 0, record)
        record.manifest['images_done'][m] = counts['images']  # every rank's, under torchrun
        for s in counts['skipped']:
            if not record.skipped(s['path']):
                record.manifest['skipped'].append(s)
        seconds += counts['curve_seconds']
        per_image += counts['curve_detections']
        rows += method_rows
        curves[m] = tuple(np.array([[r[f'{kind}_{k}'] for k in range(steps + 1)] for r in method_rows]).reshape(
            -1, steps + 1) for kind in ('deletion', 'insertion'))
        if sanity:
            checked += verdicts(m, checks['rhos'], checks['levels'], checks['constant'], a['sanity_threshold'],
                                a['sanity_partial_threshold'])
    if save_dir is None:  # another torchrun rank: its share is in rank 0's rows
        return {'save_dir': None, 'matched': len(rows)}
    summary = report.summarize(rows)
    for s in summary:
        s['per_detection'] = per_detection(s['method'])
        v = next((v for v in checked if v.method == s['method'] and v.level == (s['value'] if s['group'] == 'level'
                                                                                else 'all')), None)
        if v is not None and s['group'] in ('all', 'level'):
            s.update(sanity_rho=v.mean_rho, sanity_rho_partial=v.mean_rho_partial, sanity=v.verdict)
    report.write_csv(summary, save_dir / 'summary.csv')
    report.write_csv([{**vars(v)} for v in checked], save_dir / 'sanity.csv',
                     columns=['method', 'level', 'n', 'mean_rho', 'mean_rho_partial', 'mean_rho_prior', 'constant',
                              'verdict', 'reason', 'raw_threshold', 'partial_threshold'])
    protocol, box_multiple, match_iou = a['protocol'], a['box_multiple'], opts['match_iou']
    budget = f'{box_multiple:g} x box area' if protocol == 'box' else 'whole image'
    report.plot_curves(curves, save_dir / 'curves.png', f"{a['weights']} on {a['split']} ({a['baseline']} baseline, "
                       f'{steps} steps up to {budget})', protocol=protocol, box_multiple=box_multiple)
    if a['html']:  # before close: a manifest saying complete lists every file
        report_page.write(save_dir, {**record.manifest, 'complete': True}, rows, summary, [vars(v) for v in checked],
                          model, opts)
    record.close(rows=rows, files=['summary.csv', 'sanity.csv', 'curves.png'] + (['index.html'] if a['html'] else []))
    skipped = record.manifest['skipped']
    print(f"{len(images)} images{f' ({len(skipped)} unreadable, skipped)' if skipped else ''}, "
          f"{counts.get('ground_truth', 0)} ground-truth boxes, "
          f"{counts.get('detections', 0)} detections; matched (same class, IoU >= {match_iou}): "
          f"{len(rows) // max(len(methods), 1)} per method; deletion/insertion: {protocol} protocol, {steps} steps "
          f"up to {budget}")
    if not rows:
        LOGGER.warning(f"WARNING: no detection matched a ground-truth box: nothing to evaluate (lower --conf-thres, "
                       f"or check that {a['weights']} was trained on {a['data']})")
    columns = ['method', 'group', 'value', 'detections', *report.METRICS] + (
        ['sanity_rho', 'sanity_rho_partial', 'sanity'] if sanity else [])
    print(report.markdown(summary, columns))
    for m in methods:
        if not per_detection(m):
            print(f'{m}: {NOT_PER_DETECTION}; its metrics describe the image, not each detection')
    for v in checked:
        if v.level == 'all':
            print(f'sanity check {v.method}: {v.reason}')
    timing = curve_timing(seconds, per_image)
    if timing:
        print(f"deletion + insertion per image: median {timing['median_s']:.2f} s, max {timing['max_s']:.2f} s "
              f"({timing['per_detection_s']:.2f} s per matched detection, "
              f"up to {timing['max_detections']} in an image; "
              f"{100 * timing['share_within_2s']:.0f} % of the images within 2 s)")
    print(f'results saved to {save_dir}: results.csv, summary.csv, sanity.csv, curves.png, manifest.json'
          + (', index.html (the report page)' if a['html'] else ''))
    return {'save_dir': str(save_dir), 'summary': summary, 'sanity': [vars(v) for v in checked],
            'matched': len(rows), 'curve_timing': timing, 'skipped': skipped}


def curve_timing(seconds: list, detections: list) -> dict:
    """Wall time of deletion + insertion per image and method, and the matched detections it covered."""
    if not seconds:
        return {}
    n = sum(detections)
    return {'images': len(seconds), 'median_s': float(np.median(seconds)), 'max_s': float(max(seconds)),
            'per_detection_s': float(sum(seconds) / n) if n else float('nan'),
            'max_detections': max(detections) if detections else 0,
            'share_within_2s': float(np.mean(np.asarray(seconds) <= 2.0))}
