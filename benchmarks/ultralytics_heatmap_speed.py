#!/usr/bin/env python
"""Per-detection heatmaps on an ultralytics model vs plain inference vs ultralytics' own ``visualize``.

yolo11s at 640 (random init, class logits shifted to 0 so every anchor scores 0.5 and NMS keeps exactly
K with ``conf_thres=0``), one shapes image, in one process:

* ours: ``HeatmapEngine`` with the heatmap defaults (``--layers``), every detection's map made at the
  image's size once, no file writing;
* plain inference: forward + ultralytics' NMS under ``torch.no_grad()``;
* ultralytics: ``YOLO(ckpt).predict(visualize=True)`` (LayerCAM on the head inputs over its top-16
  pre-NMS candidates, one merged ``_cam.jpg``) and the same predict without it, both warm.

All four run with the torch threads ultralytics' ``select_device`` sets on the CPU (its NUM_THREADS,
cores - 1: 1 on a 2-core machine), so the ratios compare like with like.

    python benchmarks/ultralytics_heatmap_speed.py [--cfg yolo11s.yaml] [--k 20] [--repeats 3] [--layers ROLES]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

import yolo_attn  # noqa: F401  (registration, weights-only loading, offline)


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cfg', default='yolo11s.yaml')
    p.add_argument('--imgsz', type=int, default=640)
    p.add_argument('--k', type=int, default=20, help='detections kept (max_det, conf_thres 0)')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--layers', default=None, help='as yolo-attn heatmap --layers (default: the heatmap default)')
    p.add_argument('--method', default=None, help='as yolo-attn heatmap --method (default: the heatmap default)')
    opt = p.parse_args(argv)

    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import NUM_THREADS
    from ultralytics.utils.nms import non_max_suppression

    from yolo_attn.data.shapes import generate_shapes
    from yolo_attn.heatmaps.api import letterbox_tensor, load_model
    from yolo_attn.heatmaps.engine import HeatmapEngine
    from yolo_attn.heatmaps.options import HeatmapOptions

    torch.set_num_threads(NUM_THREADS)  # what every predict call sets again
    tmp = Path(tempfile.mkdtemp(prefix='ulhm'))
    data = generate_shapes(tmp / 'shapes', n_train=1, n_val=1, imgsz=opt.imgsz, seed=3, progress=False)
    path = next((Path(data).parent / 'images' / 'val').glob('*.jpg'))
    torch.manual_seed(0)
    model = DetectionModel(opt.cfg, ch=3, nc=80, verbose=False)
    for seq in model.model[-1].cv3:
        seq[-1].bias.data[:] = 0.0  # every anchor scores 0.5: NMS keeps exactly K, visualize takes its top 16
    model.names = {i: str(i) for i in range(80)}
    ckpt = tmp / 'model.pt'
    torch.save({'model': model.eval(), 'train_args': {}}, ckpt)

    fused = load_model(ckpt)
    im0 = cv2.imread(str(path))
    x = letterbox_tensor(im0, opt.imgsz, int(fused.stride.max()))[None]
    settings = {k: v for k, v in (('layers', opt.layers), ('method', opt.method)) if v is not None}
    options = HeatmapOptions.of(imgsz=opt.imgsz, conf_thres=0.0, max_det=opt.k, **settings)
    engine = HeatmapEngine(fused, options)

    levels = {}

    def ours():
        result, = engine(x, [im0], [str(path)])
        assert len(result.detections) == opt.k, len(result.detections)
        levels.update({lv: sum(d.level == lv for d in result.detections) for lv in range(len(fused.stride))})
        for d in result.detections:
            d.map  # noqa: B018  (made at the image's size, as yolo-attn heatmap does before writing)

    def plain():
        with torch.no_grad():
            y = fused(x)[0]
            non_max_suppression(y, 0.0, 0.45, max_det=opt.k)

    yolo = YOLO(str(ckpt))
    kw = dict(imgsz=opt.imgsz, save=False, verbose=False, project=str(tmp / 'runs'), name='p', exist_ok=True)

    def theirs():
        yolo.predict(str(path), visualize=True, **kw)

    def their_plain():
        yolo.predict(str(path), **kw)

    for fn in (ours, plain, theirs, their_plain):
        fn()  # warm: anchors, oneDNN kernels, the predictor's setup
    rows = {name: best_of(fn, opt.repeats) for name, fn in
            (('ours', ours), ('plain', plain), ('visualize', theirs), ('predict', their_plain))}
    print(f'{opt.cfg} @{opt.imgsz}, K={opt.k}, layers {engine.plan.describe()}, method {engine.options.method}, '
          f'torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}')
    print('| run | best s | median s |')
    print('|---|---:|---:|')
    for name, (best, median) in rows.items():
        print(f'| {name} | {best:.3f} | {median:.3f} |')
    print(f"ours / plain inference: {rows['ours'][0] / rows['plain'][0]:.1f}x; "
          f"ours / ultralytics visualize: {rows['ours'][0] / rows['visualize'][0]:.2f}x "
          f"(visualize / its predict: {rows['visualize'][0] / rows['predict'][0]:.1f}x)")
    print(f'backward passes: {engine.backward_passes} in {opt.repeats + 1} runs; detections per head level '
          f"{', '.join(f'P{lv + 3}: {n}' for lv, n in levels.items())}")


if __name__ == '__main__':
    main()
