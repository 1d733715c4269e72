"""Sharded explanation speed-up: ``heatmap-eval`` under ``torchrun`` with 1 rank vs N ranks.

    python benchmarks/shard_speedup.py [--images 8] [--imgsz 320] [--steps 10] [--nproc 2]

Generates ``--images`` labelled shapes images, then runs the same ``yolo-attn heatmap-eval`` (the
shipped ``yolov5n-shapes.pt``, elementwise maps, deletion/insertion, sanity check) under
``torchrun --nproc_per_node 1`` and ``--nproc_per_node N`` (CPU, gloo, one torch thread per rank as
torchrun sets it): the same code path, so rank 0's line ``rank r (host): k images, W s (CPU C s)``
times each rank's own work (maps + metrics of its images, not start-up or model loading).

Prints, per run, the whole command's wall and CPU seconds and each rank's work; the work speed-up
(1-rank work / slowest rank's work, wall and CPU); that the sharded results equal the 1-rank
results; and the load average before and after. On a machine busy with other jobs wall times
include waiting for a core (the speed-up there says little); CPU seconds are steadier.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def weights() -> Path:
    folders = (ROOT / 'yolo_attn' / 'models' / 'pretrained', ROOT / 'models' / 'pretrained')
    return next(p / 'yolov5n-shapes.pt' for p in folders if (p / 'yolov5n-shapes.pt').is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def timed(cmd, cwd, threads) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, all processes of the command) and stdout."""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore', 'OMP_NUM_THREADS': str(threads)}
    before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        sys.exit(out.stdout[-2000:] + out.stderr[-3000:])
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, out.stdout


def rows(path: Path) -> list:
    with open(path, newline='') as f:
        return [{k: v for k, v in r.items() if k != 'image'} for r in csv.DictReader(f)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--images', type=int, default=8)
    p.add_argument('--imgsz', type=int, default=320)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--nproc', type=int, default=2)
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from yolo_attn.data.shapes import generate_shapes
    load = os.getloadavg()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        generate_shapes(Path(tmp) / 'ds', n_train=1, n_val=a.images, imgsz=a.imgsz, progress=False)
        args = ['heatmap-eval', '--weights', str(weights()), '--data', 'ds/shapes.yaml', '--imgsz', str(a.imgsz),
                '--steps', str(a.steps)]
        for n in (1, a.nproc):
            cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(n), '--master_addr',
                   '127.0.0.1', '--master_port', str(free_port()), '-m', 'yolo_attn', *args, '--project', f'n{n}']
            wall, cpu, log = timed(cmd, tmp, 1)
            ranks = [dict(zip(('rank', 'images', 'wall', 'cpu'), (int(m[0]), int(m[1]), float(m[2]), float(m[3]))))
                     for m in re.findall(r'rank (\d+) \([^)]*\): (\d+) images, ([\d.]+) s \(CPU ([\d.]+) s\)', log)]
            runs[n] = (wall, cpu, ranks, rows(Path(tmp) / f'n{n}/exp/results.csv'))
    one, many = runs[1], runs[a.nproc]
    print(f'heatmap-eval, {a.images} shapes images at {a.imgsz}, {len(one[3])} matched detections, --steps {a.steps}, '
          f'one torch thread per rank')
    for n, (wall, cpu, ranks, _) in runs.items():
        work = '; '.join(f"rank {r['rank']}: {r['images']} images, {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU"
                         for r in ranks)
        print(f'  {n} rank(s): command {wall:.1f} s wall, {cpu:.1f} s CPU | work: {work}')
    w1, c1 = one[2][0]['wall'], one[2][0]['cpu']
    wn, cn = max(r['wall'] for r in many[2]), max(r['cpu'] for r in many[2])
    print(f'  work speed-up with {a.nproc} ranks: {w1 / wn:.2f}x wall, {c1 / cn:.2f}x CPU '
          f'(whole command: {one[0] / many[0]:.2f}x wall)')
    print(f'  sharded results.csv equal to 1 rank: {one[3] == many[3]}')
    print(f'  load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)')


if __name__ == '__main__':
    main()
