#!/usr/bin/env python
"""CPU latency of a stock model vs its attention variants: batch 1 at 640, median over repeated runs.

The models are built in one process, fused as detect.py does, and timed round-robin (one forward
of each model per round) so that drift in machine load hits all of them alike. yolov5 names
(``yolov5s-se``) or ultralytics ones with the scale in the name (``yolo11s``, ``yolo11s-cbam``).

    python benchmarks/latency.py [--imgsz 640] [--rounds 30] [--cfgs yolov5s yolov5s-se ...]
    python benchmarks/latency.py --cfgs yolo11s yolo11s-se yolo11s-cbam yolo11s-eca yolo11s-ca yolo11s-simam
"""

import argparse
import importlib.util
import re
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from yolo_attn.config.summary import build_model, gflops

ULTRALYTICS_NAME = re.compile(r'^(yolov8|yolo11|yolo26)([nsmlx])(-\w+)?$')


def build_any(name: str):
    """yolov5's model for a yolov5 name; ultralytics' DetectionModel (plugin on) for ``yolo11s-cbam``."""
    m = ULTRALYTICS_NAME.match(name)
    if not m:
        return build_model(name)
    from yolo_attn.config.backend import build
    from yolo_attn.config.files import load_cfg
    family, scale, suffix = m.group(1), m.group(2), m.group(3) or ''
    if suffix:
        d = load_cfg(f'{family}{suffix}')
    else:
        import yaml
        stock = Path(importlib.util.find_spec('ultralytics').origin).parent / 'cfg' / 'models'
        d = yaml.safe_load(next(stock.rglob(f'{family}.yaml')).read_text())
    return build(d, scale=scale)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cfgs', nargs='+', default=['yolov5s', 'yolov5s-se', 'yolov5s-cbam', 'yolov5s-eca', 'yolov5s-ca',
                                                     'yolov5s-simam'])
    ap.add_argument('--imgsz', type=int, default=640)
    ap.add_argument('--rounds', type=int, default=30)
    ap.add_argument('--warmup', type=int, default=3)
    opt = ap.parse_args()

    torch.manual_seed(0)
    models = {}
    for cfg in opt.cfgs:
        m = build_any(cfg).eval()
        stats = (sum(p.numel() for p in m.parameters()), gflops(m, opt.imgsz))
        models[cfg] = (m.fuse(), *stats)
    x = torch.rand(1, 3, opt.imgsz, opt.imgsz)
    times = {cfg: [] for cfg in models}
    with torch.inference_mode():
        for r in tqdm(range(opt.warmup + opt.rounds), desc='rounds'):
            for cfg, (m, *_) in models.items():
                t = time.perf_counter()
                m(x)
                if r >= opt.warmup:
                    times[cfg].append(time.perf_counter() - t)
    base = statistics.median(times[opt.cfgs[0]])
    print(f'\nCPU latency, batch 1 at {opt.imgsz}, median of {opt.rounds} rounds, '
          f'torch {torch.__version__}, {torch.get_num_threads()} threads')
    print(f"| model | params | GFLOPs@{opt.imgsz} | median ms | ratio vs {opt.cfgs[0]} |")
    print('|---|---:|---:|---:|---:|')
    for cfg, (_, params, gf) in models.items():
        med = statistics.median(times[cfg])
        print(f'| {cfg} | {params:,} | {gf:.1f} | {med * 1e3:.1f} | {med / base:.3f} |')


if __name__ == '__main__':
    main()
