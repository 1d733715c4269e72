#!/usr/bin/env python
"""How long ``yolo-attn --help`` and argument errors take, now and at an earlier commit.

Cases: the top-level help; ``build``'s help and a bad value; each heatmap command's help, an
unknown flag and a missing required argument (their flags once imported torch and pytorch-grad-cam).

Each case is a fresh ``python -m yolo_attn ...`` process (what the console script runs), wall
time from start to exit, median of ``--repeats`` runs. ``--ref REV`` also times the package as it
was at git revision REV (extracted with ``git archive`` into a temporary folder and put first on
``PYTHONPATH``), so both figures come from the same machine in the same minute.

    python benchmarks/cli_startup.py [--ref a867f32] [--repeats 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = [['--help'], ['build', '--imgsz', 'x'], ['build', '--help'],
         ['heatmap', '--no-such-flag'], ['heatmap', '--weights', 'w.pt'], ['heatmap', '--help'],
         ['heatmap-eval', '--no-such-flag'], ['heatmap-compare', '--help']]


def wall(argv, pythonpath, repeats) -> str:
    """The median wall time and the exit code(s) (0 for help, 2 for an argument error)."""
    env = {**os.environ, 'PYTHONPATH': str(pythonpath), 'PYTHONWARNINGS': 'ignore'}
    times, codes = [], set()
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, '-m', 'yolo_attn', *argv], env=env, cwd=pythonpath, capture_output=True)
        times.append(time.perf_counter() - t0)
        codes.add(out.returncode)
    return f"{statistics.median(times):.2f} s (exit {','.join(map(str, sorted(codes)))})"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ref', default=None, help='also time the package at this git revision')
    p.add_argument('--repeats', type=int, default=5, help='runs per case (median reported)')
    opt = p.parse_args()
    trees = {'now': ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if opt.ref:
            archive = Path(tmp) / 'ref.tar'
            subprocess.run(['git', 'archive', '-o', str(archive), opt.ref, 'yolo_attn', 'models'], cwd=ROOT, check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(Path(tmp) / 'ref', filter='data')
            trees = {opt.ref: Path(tmp) / 'ref', **trees}
        load = os.getloadavg()[0]
        print(f'load average {load:.1f} on {os.cpu_count()} CPUs (other jobs running inflate every figure)')
        for argv in CASES:
            figures = ', '.join(f'{label} {wall(argv, tree, opt.repeats)}' for label, tree in trees.items())
            print(f'yolo-attn {" ".join(argv):<30} {figures}')
        print(f'load average {os.getloadavg()[0]:.1f} at the end')


if __name__ == '__main__':
    main()
