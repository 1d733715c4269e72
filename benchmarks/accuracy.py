#!/usr/bin/env python
"""Accuracy on the shapes dataset: stock vs attention variants, trained the same way on the CPU.

Each cfg is trained with ``yolo-attn train`` (yolov5's train.py) on one generated shapes dataset
(256 train / 64 val at 320, seed 0), from scratch or (``--weights pretrained``) from the shipped
stock yolov5n checkpoint transferred by layer correspondence, as users start from yolov5n.pt;
then its best.pt is validated with yolov5's val.run. Prints a markdown table: mAP50, mAP50-95,
params, GFLOPs@320, training wall time.

    python benchmarks/accuracy.py [--cfgs yolov5n yolov5n-se yolov5n-cbam] [--epochs 30] [--seed 0]
                                  [--weights pretrained]
"""

import argparse
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

import yolo_attn  # noqa: F401
import yolov5.val as val
from yolo_attn.demo import pretrained_weights
from yolo_attn.integration.scripts import run_script
from yolo_attn.data.shapes import generate_shapes
from yolo_attn.config.summary import build_model, gflops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cfgs', nargs='+', default=['yolov5n', 'yolov5n-se', 'yolov5n-cbam'])
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--weights', default='', help="'' = from scratch; 'pretrained' = the shipped yolov5n-shapes.pt")
    opt = ap.parse_args()
    weights = str(pretrained_weights()) if opt.weights == 'pretrained' else opt.weights
    work = Path(tempfile.mkdtemp(prefix='yolo-attn-accuracy-'))
    data = generate_shapes(work / 'shapes', imgsz=opt.imgsz, seed=opt.seed, progress=False)
    rows = []
    for cfg in tqdm(opt.cfgs, desc='models'):
        t = time.time()
        run_script('train', ['--data', str(data), '--cfg', cfg, '--weights', weights, '--epochs', str(opt.epochs),
                             '--batch-size', str(opt.batch), '--imgsz', str(opt.imgsz), '--device', 'cpu',
                             '--workers', '2', '--noplots', '--cache', 'ram', '--seed', str(opt.seed),
                             '--project', str(work / 'runs'), '--name', cfg])
        wall = time.time() - t
        best = work / 'runs' / cfg / 'weights' / 'best.pt'
        (_, _, map50, map5095, *_), *_ = val.run(data=str(data), weights=str(best), imgsz=opt.imgsz, device='cpu',
                                                batch_size=32, project=str(work / 'val'), name=cfg, plots=False)
        model = build_model(cfg, nc=5)
        rows.append((cfg, map50, map5095, sum(p.numel() for p in model.parameters()), gflops(model, opt.imgsz), wall))
    start = f'from {opt.weights}' if opt.weights else 'from scratch'
    print(f'\nshapes ({data}), {opt.epochs} epochs at {opt.imgsz} {start}, batch {opt.batch}, seed {opt.seed}, CPU')
    print(f'| model | mAP50 | mAP50-95 | params | GFLOPs@{opt.imgsz} | train wall s |')
    print('|---|---:|---:|---:|---:|---:|')
    for cfg, m50, m, params, gf, wall in rows:
        print(f'| {cfg} | {m50:.3f} | {m:.4f} | {params:,} | {gf:.2f} | {wall:.0f} |')


if __name__ == '__main__':
    main()
