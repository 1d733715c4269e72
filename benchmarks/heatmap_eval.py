#!/usr/bin/env python
"""Heatmap evaluation: the cost of deletion + insertion, and the metrics across methods.

(a) Always: time deletion + insertion (``Perturber.curves``: 2 x steps perturbed images per
detection with the box protocol, 2 x (steps - 1) with the image protocol, plus the image and the
all-baseline image, one forward per ``--batch``) for one 320x320
shapes image with K = ``--ks`` detections on the CPU; median of ``--repeats`` runs after one
warm-up. The work does not depend on the map's content or the weights, so without ``--weights``
a random-init ``--cfg`` (default yolov5n-cbam, the demo model's architecture) and random maps are timed.

(b) With ``--weights W --data D``: ``heatmap-eval`` across the methods (gradcam, gradcam++,
xgradcam, hirescam, elementwise, layercam, eigencam), for each ``--protocols`` (box: steps up to
2x the detection's box area; image: the whole image) and ``--layers`` value, and a Markdown table:
pointing game %, energy-based pointing game, deletion AUC, insertion AUC, the randomisation
check's rank correlation raw and given the box-centre prior, and its verdict; ``heatmap-eval``
itself prints the wall time of deletion + insertion per real image.

    python benchmarks/heatmap_eval.py [--repeats 5] [--steps 20] [--batch 8] [--threads 2]
    python benchmarks/heatmap_eval.py --weights runs/demo/exp/train/weights/best.pt --data data/shapes.yaml \\
        --imgsz 320 [--max-images 64] [--skip-timing] [--protocols box image] [--layers detect level]
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
from yolo_attn.data.shapes import generate_shapes

METHODS = ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'elementwise', 'layercam', 'eigencam']


def timing(opt):
    from yolo_attn.heatmaps.api import load_model
    from yolo_attn.config.summary import build_model
    if opt.weights:
        model = load_model(opt.weights)
    else:
        torch.manual_seed(0)
        model = build_model(opt.cfg, nc=5).fuse().eval()
    with tempfile.TemporaryDirectory() as tmp:
        generate_shapes(Path(tmp) / 'ds', n_train=1, n_val=1, imgsz=320, seed=0, progress=False)
        im0 = cv2.imread(str(next((Path(tmp) / 'ds' / 'images' / 'val').glob('*.jpg'))))
    rng = np.random.default_rng(0)
    p = Perturber(model, 320, steps=opt.steps, baseline=opt.baseline, batch=opt.batch, protocol=opt.protocols[0])
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
        per = 2 * opt.steps if opt.protocols[0] == 'box' else 2 * (opt.steps - 1)  # box: both last steps too
        print(f'| {k} | {2 + per * k} | {med:.2f} | {lo:.2f} | {hi:.2f} | {med / k:.2f} |')


def methods_table(opt):
    from yolo_attn.evaluation.evaluate import run
    rows = []
    for layers in opt.layers or [None]:
        for protocol in opt.protocols:
            out = run(weights=opt.weights, data=opt.data, split=opt.split, imgsz=opt.imgsz, method=opt.methods,
                      layers=layers, conf_thres=opt.conf_thres, steps=opt.steps, baseline=opt.baseline,
                      batch=opt.batch, protocol=protocol, max_images=opt.max_images, sanity_max=opt.sanity_max,
                      project=opt.project)
            rows += [(layers or 'default', protocol, s) for s in out['summary'] if s['group'] == 'all']
    print(f'\n{opt.weights} on {opt.data} {opt.split} (imgsz {opt.imgsz}, conf {opt.conf_thres}, {opt.steps} steps, '
          f'{opt.baseline} baseline, max images {opt.max_images}, sanity on the first {opt.sanity_max} matched)\n')
    print('| layers | method | protocol | n | PG % | EPG | deletion AUC ↓ | insertion AUC ↑ | rho | rho given prior '
          '| sanity |')
    print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|')
    for layers, protocol, s in rows:
        print(f"| {layers} | {s['method']} | {protocol} | {s['detections']} | {s['pointing_game']:.1f} | "
              f"{s['energy_pg']:.3f} | {s['deletion_auc']:.3f} | {s['insertion_auc']:.3f} | "
              f"{s.get('sanity_rho', float('nan')):.2f} | {s.get('sanity_rho_partial', float('nan')):.2f} | "
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
    ap.add_argument('--protocols', nargs='+', default=['box'], choices=['box', 'image'],
                    help='deletion/insertion protocols to run (the first one is also timed)')
    ap.add_argument('--layers', nargs='+', default=None, help='--layers values to run (default: the default)')
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
