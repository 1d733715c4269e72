#!/usr/bin/env python
"""Training throughput: ``yolo-attn train`` vs stock yolov5 training, same stock cfg and data, one process.

Stock: yolov5's ``train.main(opt)`` with yolov5's own ``parse_model`` restored (the compat fixes stay:
without them yolov5 7.0.14 does not run on this stack). Ours: ``yolo_attn.integration.scripts.run_script('train',
argv)`` — preflight, the plugin's parser, the secure loader. Runs alternate (stock, ours, stock, ours,
...); images/s is timed per epoch between yolov5's ``on_train_epoch_start`` and ``on_train_epoch_end``
callbacks (the batch loop only, not validation), first epoch of each run skipped, median reported.

    python benchmarks/train_throughput.py [--cfg yolov5n] [--images 128] [--epochs 3] [--pairs 2]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yolo_attn  # noqa: F401
import yolov5.models.yolo as yolo
import yolov5.train as train
from yolo_attn.config.files import resolve_cfg
from yolo_attn.integration.install import ORIGINAL_PARSE_MODEL
from yolo_attn.integration.scripts import run_script
from yolo_attn.data.shapes import generate_shapes

EPOCHS = []


def epoch_timer():
    """Hook yolov5's default Callbacks object (train.main's default argument, used by both paths)."""
    callbacks = train.main.__defaults__[0]
    state = {}
    callbacks.register_action('on_train_epoch_start', 'bench', lambda *a, **k: state.__setitem__('t', time.perf_counter()))
    callbacks.register_action('on_train_epoch_end', 'bench',
                              lambda *a, **k: EPOCHS.append(time.perf_counter() - state['t']))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cfg', default='yolov5n')
    ap.add_argument('--images', type=int, default=128)
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--pairs', type=int, default=2)
    opt = ap.parse_args()
    epoch_timer()
    work = Path(tempfile.mkdtemp(prefix='yolo-attn-throughput-'))
    data = generate_shapes(work / 'shapes', n_train=opt.images, n_val=16, imgsz=opt.imgsz, progress=False)
    argv = ['--data', str(data), '--cfg', str(resolve_cfg(opt.cfg)), '--weights', '', '--epochs', str(opt.epochs),
            '--batch-size', str(opt.batch), '--imgsz', str(opt.imgsz), '--device', 'cpu', '--workers', '2',
            '--noplots', '--project', str(work / 'runs'), '--seed', '0']
    rates = {'stock': [], 'yolo-attn': []}
    for pair in range(opt.pairs):
        for name in ('stock', 'yolo-attn'):
            EPOCHS.clear()
            if name == 'stock':
                ours = yolo.parse_model
                yolo.parse_model = ORIGINAL_PARSE_MODEL['yolov5.models.yolo']
                try:
                    train.main(_opt(argv))
                finally:
                    yolo.parse_model = ours
            else:
                run_script('train', argv)
            rates[name] += [opt.images / t for t in EPOCHS[1:]]
    stock, ours = statistics.median(rates['stock']), statistics.median(rates['yolo-attn'])
    print(f'\n{opt.cfg} @{opt.imgsz}, batch {opt.batch}, {opt.images} images, CPU; median over '
          f'{len(rates["stock"])} epochs each (first epoch of every run skipped)')
    print('| trainer | images/s |\n|---|---:|')
    print(f'| stock yolov5 train | {stock:.2f} |\n| yolo-attn train | {ours:.2f} |')
    print(f'ratio yolo-attn / stock: {ours / stock:.3f}')


def _opt(argv):
    """yolov5's train options for an argv list, parsed by train.py's own parse_opt."""
    import sys
    saved = sys.argv
    sys.argv = ['train', *argv]
    try:
        return train.parse_opt()
    finally:
        sys.argv = saved


if __name__ == '__main__':
    main()
