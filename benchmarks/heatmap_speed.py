#!/usr/bin/env python
"""Per-detection heatmaps vs the reference loop vs plain inference, yolov5s at 640, one image.

For K = 1, 10, 20, 50 detections (random-init yolov5s, ``conf_thres=0`` and ``max_det=K`` so NMS
keeps exactly K) this measures, in one process:

* ours: ``HeatmapEngine`` (one forward, ``autograd.grad`` of scores read from their own head to
  the target layers, shared between detections with disjoint gradient windows where packing
  applies, pytorch-grad-cam weighting), each detection's map made at the image's size once, no
  file writing;
* reference: the script users start from (yolov5 7.0 + grad-cam; top raw predictions by objectness,
  no NMS): one forward, then per prediction
  ``model.zero_grad()`` + ``backward(retain_graph=True)`` through the whole model (parameters
  included), the CAM from ``model.model[-2]`` with the same grad-cam method;
* plain inference: forward + NMS under ``torch.no_grad()``;
* peak extra RSS during one further run of each (sampled every 2 ms, apart from the timed runs),
  and the time to write the PNGs separately.

    python benchmarks/heatmap_speed.py [--ks 1 10 20 50] [--repeats 3] [--method elementwise] [--layers ROLES]

``--layers`` takes what ``yolo-attn heatmap --layers`` takes (roles such as ``backbone``, ``detect``,
``level``, or indices; default: the heatmap default), resolved for yolov5s by ``heatmaps.layers``.
The load average is printed with the table: the machine may be shared.
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import torch
from tqdm import tqdm

import yolo_attn  # noqa: F401
from yolo_attn.heatmaps.engine import HeatmapEngine
from yolo_attn.heatmaps.methods import CAM_CLASSES, cam_class
from yolo_attn.heatmaps.layers import resolve as resolve_layers
from yolo_attn.heatmaps.runner import overlay, write
from yolo_attn.config.summary import build_model


class PeakRSS:
    """Peak resident memory above the level at entry, sampled in a thread."""

    def __enter__(self):
        self.proc, self.base, self.peak, self.run = psutil.Process(), psutil.Process().memory_info().rss, 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.run:
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.run = False
        self.thread.join()


def reference_loop(model, x, k, method):
    """The script users start from (NOTES.md): top-K raw predictions by objectness (no NMS), then per
    prediction ``zero_grad()`` + ``backward(retain_graph=True)`` through the whole model, and the
    CAM of one hooked layer (``model.model[-2]``) with the same grad-cam method."""
    layer = model.model[-2]
    store = {}

    def keep(module, inputs, output):
        store['a'] = output
        output.register_hook(lambda g: store.__setitem__('g', g))

    h = layer.register_forward_hook(keep)
    cam = cam_class(method)(model, [layer])
    cam.activations_and_grads.release()
    for p in model.parameters():
        p.requires_grad_(True)
    pred = model(x)[0]
    maps = []
    for i in pred[0, :, 4].argsort(descending=True)[:k]:
        model.zero_grad()
        pred[0, i, 4].backward(retain_graph=True)
        cam.activations_and_grads.activations = [store['a'].detach()]
        cam.activations_and_grads.gradients = [store['g'].detach()]
        maps.append(cam.aggregate_multi_layers(cam.compute_cam_per_layer(x, None, False)))
    h.remove()
    return maps


def every_map(results):
    """Make each detection's map at the image's size once and drop it, as ``yolo-attn heatmap`` does
    when it writes them (``Detection.map`` combines and resizes on reading: without this the engine's
    time would leave that work out, while the reference's maps are made in its loop)."""
    for r in results:
        for d in r.detections:
            d.map
    return results


def plain_inference(model, x, k):
    from yolov5.utils.general import non_max_suppression
    with torch.no_grad():
        return non_max_suppression(model(x)[0], 0.0, 0.45, max_det=k)


def timed(fn, repeats):
    """Median wall time of ``repeats`` runs, then the peak extra RSS of one more run: the sampling
    thread competes for the interpreter, so no timed run has it."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    with PeakRSS() as mem:
        fn()
    return statistics.median(times), mem.peak / 2 ** 20, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--ks', type=int, nargs='+', default=[1, 10, 20, 50])
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--method', default='elementwise', choices=list(CAM_CLASSES))
    ap.add_argument('--layers', default=None, help='roles or indices (default: the heatmap default)')
    ap.add_argument('--imgsz', type=int, default=640)
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own)')
    opt = ap.parse_args()
    if opt.threads:
        torch.set_num_threads(opt.threads)
    torch.manual_seed(0)
    model = build_model('yolov5s').eval().fuse()
    x = torch.rand(1, 3, opt.imgsz, opt.imgsz)
    image = (np.random.default_rng(0).random((opt.imgsz, opt.imgsz, 3)) * 255).astype(np.uint8)
    rows = []
    for k in tqdm(opt.ks, desc='K'):
        engine = HeatmapEngine(model, method=opt.method, layers=opt.layers, conf_thres=0.0, max_det=k)
        t_ours, m_ours, res = timed(lambda: every_map(engine(x.clone(), [image], ['bench'])), opt.repeats)
        passes = engine.backward_passes / (opt.repeats + 1)  # shared backward passes per call (packing)
        assert len(res[0].detections) == k, len(res[0].detections)
        t_ref, m_ref, _ = timed(lambda: reference_loop(model, x.clone(), k, opt.method), 1 if k > 20 else opt.repeats)
        t_inf, m_inf, _ = timed(lambda: plain_inference(model, x, k), opt.repeats)
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            for j, det in enumerate(res[0].detections):
                write(Path(d) / f'{j}.png', overlay(image, det))
            t_write = time.perf_counter() - t
        rows.append((k, t_ours, t_ref, t_inf, m_ours, m_ref, t_write, passes))
    plan = resolve_layers(model, opt.layers)
    levels = [d.level for d in res[0].detections]
    print(f'\nyolov5s @{opt.imgsz}, method {opt.method}, layers {plan.describe()}, target score, CPU, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads; median of {opt.repeats} (reference at '
          f'K>20: 1 run); head levels of the last K: '
          + ', '.join(f'P{v + 3} x{levels.count(v)}' for v in sorted(set(levels)))
          + '; load average (1, 5, 15 min) %.1f %.1f %.1f' % os.getloadavg())
    print('| K | ours s | reference s | plain inference s | speed-up vs reference | ours / inference '
          '| ours peak extra MiB | reference peak extra MiB | writing PNGs s | our backward passes |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for k, t_ours, t_ref, t_inf, m_ours, m_ref, t_write, passes in rows:
        print(f'| {k} | {t_ours:.2f} | {t_ref:.2f} | {t_inf:.2f} | {t_ref / t_ours:.1f}x | {t_ours / t_inf:.1f}x '
              f'| {m_ours:.0f} | {m_ref:.0f} | {t_write:.2f} | {passes:.0f} |')


if __name__ == '__main__':
    main()
