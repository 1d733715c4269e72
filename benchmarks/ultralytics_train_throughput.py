#!/usr/bin/env python
"""ultralytics training speed with and without the plugin: the same YOLO11 training, alternating runs.

Each run is a fresh process that trains ``--model`` for ``--epochs`` on generated shapes data; the
plugin's runs ``import yolo_attn`` first (blocks registered, weights-only loading, callbacks). The
median of the train() wall times per side, and their ratio (plain / plugin: ≥ 1 means no slower).

    OMP_NUM_THREADS=2 python benchmarks/ultralytics_train_throughput.py --model yolo11n.yaml --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

RUN = '''
import sys, time
if sys.argv[1] == 'plugin':
    import yolo_attn  # noqa: F401
from ultralytics import YOLO
t = time.perf_counter()
YOLO(sys.argv[2]).train(data=sys.argv[3], epochs=int(sys.argv[4]), imgsz=320, batch=8, device='cpu', workers=0,
                        project=sys.argv[5], name='run', plots=False, val=False, seed=0, deterministic=True)
print('SECONDS', time.perf_counter() - t)
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--model', default='yolo11n.yaml')
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--train', type=int, default=64)
    ap.add_argument('--repeats', type=int, default=3)
    opt = ap.parse_args()
    from yolo_attn.data.shapes import generate_shapes
    work = Path(tempfile.mkdtemp(prefix='yolo-attn-ut-throughput-'))
    data = generate_shapes(work / 'shapes', n_train=opt.train, n_val=8, imgsz=320, seed=0, progress=False)
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(work / 'settings'), 'YOLO_OFFLINE': '1'}
    times = {'plain': [], 'plugin': []}
    for r in range(opt.repeats):
        for side in ('plain', 'plugin') if r % 2 == 0 else ('plugin', 'plain'):
            out = subprocess.run([sys.executable, '-c', textwrap.dedent(RUN), side, opt.model, str(data),
                                  str(opt.epochs), str(work / f'{side}{r}')], env=env, capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-2000:])
            times[side].append(float(out.stdout.split('SECONDS')[-1]))
            print(side, f'{times[side][-1]:.1f} s', flush=True)
    plain, plugin = statistics.median(times['plain']), statistics.median(times['plugin'])
    print(f'\n{opt.model}, {opt.epochs} epochs on {opt.train} images at 320, {opt.repeats} runs each: '
          f'plain {plain:.1f} s, with the plugin {plugin:.1f} s, throughput ratio {plain / plugin:.3f}')


if __name__ == '__main__':
    main()
