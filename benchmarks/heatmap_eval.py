#!/usr/bin/env python
"""Heatmap evaluation: the cost of deletion + insertion, and the metrics across methods.

(a) Always: time deletion + insertion (``Perturber.curves``: 2 x (steps - 1) perturbed images per
detection plus the image and the all-baseline image, one forward per ``--batch``) for one 320x320
shapes image with K = ``--ks`` detections on the CPU; median of ``--repeats`` runs after one
warm-up. The work does not depend on the map's content or the weights, so without ``--weights``
a random-init ``--cfg`` (default yolov5n-cbam, the demo model's architecture) and random maps are timed.

(b) With ``--weights W --data D``: ``heatmap-eval`` across the methods (gradcam, gradcam++,
xgradcam, hirescam, elementwise, layercam, eigencam) and a Markdown table: pointing game %,
energy-based pointing game, deletion AUC, insertion AUC, sanity-check rank correlation and verdict,
and (printed by ``heatmap-eval`` itself) the wall time of deletion + insertion per real image.

    python benchmarks/heatmap_eval.py [--repeats 5] [--steps 20] [--batch 8] [--threads 2]
    python benchmarks/heatmap_eval.py --weights runs/demo/exp/train/weights/best.pt --data data/shapes.yaml \\
        --imgsz 320 [--max-images 64] [--skip-timing]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

import yolo_attn  # noqa: F401
from yolo_attn.evaluation.perturb import Perturber
from yolo_attn.shapes import generate_shapes

METHODS = ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'elementwise', 'layercam', 'eigencam']


def timing(opt):
    from yolo_attn.heatmaps.api import load_model
    from yolo_attn.summary import build_model
    if opt.weights:
        model = load_model(opt.weights)
    else:
        torch.manual_seed(0)
        model = build_model(opt.cfg, nc=5).fuse().eval()
    with tempfile.TemporaryDirectory() as tmp:
        generate_shapes(Path(tmp) / 'ds', n_train=1, n_val=1, imgsz=320, seed=0, progress=False)
        im0 = cv2.imread(str(next((Path(tmp) / 'ds' / 'images' / 'val').glob('*.jpg'))))
    rng = np.random.default_rng(0)
    p = Perturber(model, 320, steps=opt.steps, baseline=opt.baseline, batch=opt.batch)
    rows = []
    for k in opt.ks:
        targets = [(rng.random(im0.shape[:2]).astype(np.float32), int(rng.integers(5)), [80.0, 80.0, 200.0, 220.0])
                   for _ in range(k)]
        p.curves(im0, targets)  # warm-up
        times = []
        for _ in range(opt.repeats):
            t = time.perf_counter()
            p.curves(im0, targets)
            times.append(time.perf_counter() - t)
        rows.append((k, statistics.median(times), min(times), max(times)))
    print(f'\ndeletion + insertion, one 320x320 image, {opt.steps} steps, batch {opt.batch}, baseline {opt.baseline}, '
          f'{torch.get_num_threads()} torch threads, {"weights " + opt.weights if opt.weights else "random " + opt.cfg}, '
          f'median of {opt.repeats}:\n')
    print('| detections | perturbed images | median s | min s | max s | s per detection |')
    print('|---:|---:|---:|---:|---:|---:|')
    for k, med, lo, hi in rows:
        print(f'| {k} | {2 + 2 * (opt.steps - 1) * k} | {med:.2f} | {lo:.2f} | {hi:.2f} | {med / k:.2f} |')


def methods_table(opt):
    from yolo_attn.evaluation.evaluate import run
    out = run(weights=opt.weights, data=opt.data, split=opt.split, imgsz=opt.imgsz, method=opt.methods,
              conf_thres=opt.conf_thres, steps=opt.steps, baseline=opt.baseline, batch=opt.batch,
              max_images=opt.max_images, sanity_max=opt.sanity_max, project=opt.project)
    print(f'\n{opt.weights} on {opt.data} {opt.split} (imgsz {opt.imgsz}, conf {opt.conf_thres}, {opt.steps} steps, '
          f'{opt.baseline} baseline, max images {opt.max_images}); outputs in {out["save_dir"]}\n')
    print('| method | matched detections | PG % | EPG | deletion AUC ↓ | insertion AUC ↑ | sanity rho | sanity |')
    print('|---|---:|---:|---:|---:|---:|---:|---|')
    for s in out['summary']:
        if s['group'] == 'all':
            print(f"| {s['method']} | {s['detections']} | {s['pointing_game']:.1f} | {s['energy_pg']:.3f} | "
                  f"{s['deletion_auc']:.3f} | {s['insertion_auc']:.3f} | {s.get('sanity_rho', float('nan')):.2f} | "
                  f"{s.get('sanity', '')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--weights', default='', help='checkpoint; required for the methods table')
    ap.add_argument('--data', default='', help='data YAML with labels: runs the methods table')
    ap.add_argument('--split', default='val')
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--conf-thres', type=float, default=0.25)
    ap.add_argument('--methods', nargs='+', default=METHODS)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--baseline', default='blur')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--max-images', type=int, default=None)
    ap.add_argument('--sanity-max', type=int, default=100)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--ks', type=int, nargs='+', default=[1, 4, 5, 8], help='detections per timed image')
    ap.add_argument('--cfg', default='yolov5n-cbam', help='architecture timed without --weights')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    ap.add_argument('--skip-timing', action='store_true')
    ap.add_argument('--project', default='runs/heatmap-eval')
    opt = ap.parse_args()
    if opt.threads:
        torch.set_num_threads(opt.threads)
    if not opt.skip_timing:
        timing(opt)
    if opt.data:
        if not opt.weights:
            ap.error('--data needs --weights')
        methods_table(opt)


if __name__ == '__main__':
    main()
