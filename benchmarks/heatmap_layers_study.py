#!/usr/bin/env python
"""Which layers, method and combination rule make the default heatmap? The README's table.

For each model (``--weights``, several allowed; yolov5 or ultralytics checkpoints) on the first
``--max-images`` images of a labelled split, every detection matched to a ground-truth box (same
class, IoU >= 0.5) is explained once per method with the union of all candidate layers (``HeatmapEngine.layer_maps``: each layer's map
exactly pytorch-grad-cam's), the same rows of a randomised copy of the model likewise
(``evaluation.sanity.randomized_copy``); each candidate then picks its layers per head level and
combines them with its rule (``heatmaps.combine``, the engine's own code). Per candidate, overall
and per head level (P3, P4, P5):

* PG %: pointing game; EPG: share of the map's energy in the box;
* coverage: median share of the box where the map is >= 0.5 of its maximum;
* wider: share of maps whose >= 0.5 region spans more than one grid cell of the detection's stride;
* del / ins: deletion and insertion AUC, box-relative protocol (``evaluation.perturb``,
  ``protocol='box'``: up to 2x the box area in saliency order, ties in a seeded order);
* rho / partial: Spearman between trained and randomised maps, raw and given the
  distance-from-box-centre prior (``evaluation.sanity.correlations``);
* s/img: wall time of ``HeatmapEngine`` with the candidate's layers and rule, per image.

    python benchmarks/heatmap_layers_study.py --weights A.pt B.pt --data shapes.yaml --max-images 32
"""

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

import yolo_attn  # noqa: F401
from yolo_attn.evaluation.matching import greedy_match, read_labels
from yolo_attn.evaluation.metrics import energy_pointing_game, pointing_game
from yolo_attn.evaluation.perturb import Perturber
from yolo_attn.evaluation.sanity import correlations, randomized_copy
from yolo_attn.heatmaps.api import load_model
from yolo_attn.heatmaps.combine import combine_layers
from yolo_attn.heatmaps.engine import HeatmapEngine
from yolo_attn.heatmaps.heads import is_ultralytics
from yolo_attn.heatmaps.layers import Plan, level_layers, roles, structure


def candidates(model, methods, only=None):
    """(label, method, rule, per-level layer lists) for this model: roles, subsets and rules."""
    r, lv = roles(model), level_layers(model)
    s = structure(model)
    nh = len(lv)
    bb = r['backbone']
    fine2 = bb[:2]  # the two finest backbone stages
    own = [[p[-1]] for p in lv]  # per level: the stage at the head's stride
    p2 = [j for j in range(s.backbone_end) if s.strides[j] == 4 and j not in s.attention]
    out = []  # (label, method, rule, per-level layers, full): full = also deletion/insertion and timing
    for m in methods:
        full = m == methods[0]  # deletion/insertion and timing only where --curves names the candidate
        out += [('detect', m, 'mean', [r['detect']] * nh, full),
                ('neck', m, 'mean', [r['neck']] * nh, full),
                ('neck', m, 'tanh', [r['neck']] * nh, False),
                ('neck + detect', m, 'mean', [r['neck'] + r['detect']] * nh, False),
                ('backbone', m, 'mean', [bb] * nh, full),
                ('backbone', m, 'gmean', [bb] * nh, full),
                ('backbone', m, 'tanh', [bb] * nh, False),
                ('backbone 2 finest', m, 'mean', [fine2] * nh, False),
                ('level (own stride)', m, 'mean', own, False),
                ('level (own stride)', m, 'tanh', own, False),
                ('level (own + finer)', m, 'mean', lv, full),
                ('level (own + finer)', m, 'gmean', lv, False),
                ('level (own + finer)', m, 'tanh', lv, full)]
        if p2:
            out.append(('level + stride-4 stage', m, 'gmean', [sorted(set(p) | {p2[-1]}) for p in lv], False))
        if r['attention']:
            out.append(('attention', m, 'mean', [r['attention']] * nh, False))
    out.append((BOX, methods[0], '-', [[] for _ in lv], True))
    if is_ultralytics(model):
        out.append((ULTRA, methods[0], '-', [[] for _ in lv], True))
    return out if only is None else [c for c in out if f'{c[0]}/{c[2]}' in only]


BOX = 'box (reference: 1 in the box, 0 outside)'
ULTRA = "ultralytics visualize (LayerCAM, one map per image)"


class _AutoBackendLike(torch.nn.Module):
    """What ``class_activation_map`` reads: ``model.model.model[-1]`` is the head."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


def ultralytics_map(model, x) -> np.ndarray:
    """ultralytics' own ``visualize`` map of the letterboxed batch ``x`` (1, 3, H, W): its
    ``class_activation_map`` (LayerCAM on the head inputs over the top-16 candidates above conf 0.25,
    merged by maximum), taken where it is colour-mapped for the saved JPEG; float32 (H, W) in [0, 1]."""
    import tempfile
    from ultralytics.utils import plotting
    seen = []

    class Capture:  # plotting's cv2, with applyColorMap recording the map it is given
        def __getattr__(self, name):
            return getattr(cv2, name)

        @staticmethod
        def applyColorMap(c, cmap):  # noqa: N802
            seen.append(c.copy())
            return cv2.applyColorMap(c, cmap)

    real = plotting.cv2
    plotting.cv2 = Capture()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plotting.class_activation_map(_AutoBackendLike(model), x, ['im.jpg'], Path(tmp))
    finally:
        plotting.cv2 = real
    return seen[0].astype(np.float32) / 255


def cell_spread(cam, stride_px) -> bool:
    """Does the map's >= 0.5-of-max region span more than one grid cell (``stride_px`` pixels)?"""
    ys, xs = np.nonzero(cam >= 0.5 * cam.max())
    return bool(len(xs) and max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) > stride_px)


def coverage(cam, box) -> float:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    inside = cam[max(y1, 0):y2, max(x1, 0):x2]
    return float((inside >= 0.5 * cam.max()).mean()) if inside.size else 0.0


def study_model(weights, files, opt):
    from yolov5.utils.general import scale_boxes
    from yolov5.utils.segment.general import scale_image
    model = load_model(weights)
    name = Path(weights).stem if Path(weights).stem != 'best' else Path(weights).parents[2].name
    random = randomized_copy(model, seed=0)
    perturber = Perturber(model, opt.imgsz, opt.steps, 'blur', 8, 0.5, protocol='box')
    cands = candidates(model, opt.methods, opt.only)
    union = sorted({i for c in cands for p in c[3] for i in p})
    nh = len(level_layers(model))
    plan = Plan('study', union, [union] * nh)
    engines = {m: (HeatmapEngine(model, method=m, layers=plan, pack=False),
                  HeatmapEngine(random, method=m, layers=plan, pack=False))
               for m in opt.methods}
    strides = [int(s) for s in model.stride]
    rows = []
    for f in tqdm(files, desc=f'study {Path(weights).name}', unit='image'):
        im0 = cv2.imread(str(f))
        x = perturber.letterbox(im0)[None]
        size = x.shape[2:]
        gain = min(size[0] / im0.shape[0], size[1] / im0.shape[1])
        gt_cls, gt_boxes = read_labels(f, im0.shape)
        per_method = {}
        for m, (eng, reng) in engines.items():
            pred, raw, acts = eng.forward(x)
            det, idx = eng.head.nms(pred, raw, opt.conf_thres, 0.45, None, False, 300)[0]
            boxes = scale_boxes(size, det[:, :4].clone(), im0.shape).round().tolist()
            pairs = greedy_match(boxes, det[:, 5].long().tolist(), det[:, 4].tolist(), gt_boxes, gt_cls, 0.5)
            keep = sorted(pairs)
            if not keep:
                break
            det, idx = det[keep], idx[keep]
            boxes = [boxes[k] for k in keep]
            grids = [tuple(r.shape[2:4]) for r in raw]
            where = [eng.head.locate(int(i), grids) for i in idx]
            trained = _layer_maps(eng, raw, acts, det, idx, x, where)
            _, raw_r, acts_r = reng.forward(x)
            rand = _layer_maps(reng, raw_r, acts_r, det, idx, x, where)
            per_method[m] = (det, boxes, where, trained, rand)
        ultra = [ultralytics_map(mdl, x) for mdl in (model, random)] if is_ultralytics(model) and per_method else None
        for label, m, rule, per_level, full in cands:
            if m not in per_method:
                continue
            det, boxes, where, trained, rand = per_method[m]
            maps, rmaps = [], []
            for k in range(len(det)):
                if label == ULTRA:  # the same per-image map scored against every detection of the image
                    maps.append(scale_image(size, ultra[0], im0.shape)[..., 0].astype(np.float32))
                    rmaps.append(scale_image(size, ultra[1], im0.shape)[..., 0].astype(np.float32))
                    continue
                if label == BOX:  # what a map that is exactly the box scores (no model in it)
                    x1, y1, x2, y2 = (int(round(v)) for v in boxes[k])
                    cam = np.zeros(im0.shape[:2], np.float32)
                    cam[max(y1, 0):y2, max(x1, 0):x2] = 1
                    maps.append(cam)
                    rmaps.append(cam)
                    continue
                cols = [union.index(i) for i in per_level[where[k][0]]]
                for src, dst in ((trained, maps), (rand, rmaps)):
                    cam = combine_layers(src[k][None, cols], rule, engines[m][0].cam)[0]
                    dst.append(scale_image(size, cam, im0.shape)[..., 0].astype(np.float32))
            curves = perturber.curves(im0, [(cam, int(d[5]), b) for cam, d, b in zip(maps, det, boxes)]) \
                if full and f'{label}/{rule}' in opt.curves else [None] * len(maps)
            for k, (cam, rcam, c) in enumerate(zip(maps, rmaps, curves)):
                rho, partial, _ = correlations(cam, rcam, boxes[k])
                level = where[k][0]
                rows.append(dict(model=name, candidate=label,
                                 method=m, rule=rule, level=f'P{level + 3}',
                                 pg=int(pointing_game(cam, boxes[k])), epg=energy_pointing_game(cam, boxes[k]),
                                 coverage=coverage(cam, boxes[k]), wider=int(cell_spread(cam, strides[level] / gain)),
                                 deletion=c.deletion_auc if c else np.nan,
                                 insertion=c.insertion_auc if c else np.nan, rho=rho, partial=partial))
    times = {}
    for label, m, rule, per_level, full in cands:
        if not full or not opt.time_images or f'{label}/{rule}' not in opt.curves or label in (BOX, ULTRA):
            continue
        cplan = Plan(label, sorted({i for p in per_level for i in p}), per_level)
        eng = HeatmapEngine(model, method=m, layers=cplan, combine=rule, conf_thres=opt.conf_thres)
        t = time.perf_counter()
        for f in files[:opt.time_images]:
            im0 = cv2.imread(str(f))
            eng(perturber.letterbox(im0)[None], [im0], [str(f)])
        times[name, label, m, rule] = (time.perf_counter() - t) / opt.time_images
    return rows, times


def _layer_maps(eng, raw, acts, det, idx, x, where):
    out = [None] * len(det)
    for ks, _, maps in eng.layer_maps(raw, acts, 0, det, idx, x, where):
        for k, m in zip(ks, maps):
            out[k] = m
    return out


def table(rows, times):
    import pandas as pd
    df = pd.DataFrame(rows)
    lines = ['| model | candidate | method | rule | n | PG % | EPG | EPG P3/P4/P5 | coverage | wider % | del | ins '
             '| rho | partial | s/img |', '|---|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|']
    for (model, cand, method, rule), g in df.groupby(['model', 'candidate', 'method', 'rule'], sort=False):
        per = '/'.join(f"{g[g.level == lv].epg.mean():.2f}" if (g.level == lv).any() else '—'
                       for lv in sorted(df.level.unique()))
        lines.append(f'| {model} | {cand} | {method} | {rule} | {len(g)} | {100 * g.pg.mean():.1f} '
                     f'| {g.epg.mean():.3f} '
                     f'| {per} | {g.coverage.median():.2f} | {100 * g.wider.mean():.0f} | {g.deletion.mean():.3f} '
                     f'| {g.insertion.mean():.3f} | {g.rho.mean():.2f} | {g.partial.mean():.2f} '
                     f'| {times.get((model, cand, method, rule), float("nan")):.3f} |')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--weights', nargs='+', required=True)
    ap.add_argument('--data', required=True, help='data YAML (images and labels)')
    ap.add_argument('--split', default='val')
    ap.add_argument('--max-images', type=int, default=32)
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--conf-thres', type=float, default=0.25)
    ap.add_argument('--methods', nargs='+', default=['elementwise'])
    ap.add_argument('--curves', nargs='*',
                    default=['detect/mean', 'neck/mean', 'backbone/mean', 'level (own + finer)/mean',
                             'level (own + finer)/tanh', f'{BOX}/-', f'{ULTRA}/-'],
                    help="'candidate/rule' labels that also get deletion/insertion curves and timing (costly)")
    ap.add_argument('--only', nargs='*', default=None, help="only these 'candidate/rule' labels (default: all)")
    ap.add_argument('--time-images', type=int, default=8, help='images timed per candidate')
    ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--csv', default=None, help='also write the per-detection rows here')
    opt = ap.parse_args()
    if opt.threads:
        torch.set_num_threads(opt.threads)
    from yolo_attn.integration.datasets import load_data_yaml, split_images
    files = sorted(split_images(load_data_yaml(opt.data), opt.split))[:opt.max_images]
    rows, times = [], {}
    for w in opt.weights:
        r, t = study_model(w, files, opt)
        rows += r
        times.update(t)
        if opt.csv:  # after each model, so a long run's finished models are kept
            import pandas as pd
            pd.DataFrame(rows).to_csv(opt.csv, index=False, float_format='%.5g')
    print(f'\n{len(files)} images of {opt.data} {opt.split} at {opt.imgsz}, {opt.steps} deletion/insertion steps '
          f'(box protocol), torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(table(rows, times))


if __name__ == '__main__':
    main()
