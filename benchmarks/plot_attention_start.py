#!/usr/bin/env python
"""Plot training runs side by side: validation mAP50-95 and the blocks' mean strength per epoch.

Reads each run folder's results.csv (yolov5) and attention.csv (yolo-attn train); the figure in
the README's training section came from the accuracy benchmark's runs (benchmarks/README.md):

    python benchmarks/plot_attention_start.py --out docs/attention_start.png \
        stock=RUNS/easy-yolov5n-s0-ramp ramp=RUNS/easy-yolov5n-cbam-s0-ramp \
        paper=RUNS/easy-yolov5n-cbam-s0-paper residual=RUNS/easy-yolov5n-cbam-s0-residual
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def per_epoch(run: Path) -> tuple[list, list, dict]:
    with open(run / 'results.csv') as f:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f)]
    epochs = [int(r['epoch']) + 1 for r in rows]
    maps = [float(r['metrics/mAP_0.5:0.95']) for r in rows]
    strength = {}
    if (run / 'attention.csv').exists():
        with open(run / 'attention.csv') as f:
            for r in csv.DictReader(f):
                strength.setdefault(int(r['epoch']) + 1, []).append(float(r['change']))
    return epochs, maps, {e: sum(v) / len(v) for e, v in strength.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('runs', nargs='+', metavar='LABEL=DIR')
    ap.add_argument('--out', required=True)
    ap.add_argument('--title', default='yolov5n-cbam from the stock shapes checkpoint, 20 epochs (seed 0)')
    opt = ap.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, item in enumerate(opt.runs):
        label, run = item.split('=', 1)
        epochs, maps, strength = per_epoch(Path(run))
        color = f'C{k}'  # the same colour for a run in both panels
        a.plot(epochs, maps, marker='.', label=label, color=color)
        if strength:
            b.plot(list(strength), [100 * v for v in strength.values()], marker='.', label=label, color=color)
    a.set(xlabel='epoch', ylabel='val mAP50-95 (EMA model)', title='accuracy')
    b.set(xlabel='epoch', ylabel='mean |y - x| / mean |x|  (%)', title="blocks' strength")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(opt.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(opt.out, dpi=110)
    print(f'saved {opt.out}')


if __name__ == '__main__':
    main()
