"""Sharded explanation speed-up: ``heatmap-eval`` in one process vs ``torchrun --nproc_per_node N``.

    python benchmarks/shard_speedup.py [--images 8] [--imgsz 320] [--steps 10] [--nproc 2]

Generates ``--images`` labelled shapes images, then runs the same ``yolo-attn heatmap-eval`` (the
shipped ``yolov5n-shapes.pt``, elementwise maps, deletion/insertion, sanity check) three ways, each a
fresh process as a user runs it:

1. one process, one torch thread (what each rank gets: torchrun sets ``OMP_NUM_THREADS=1``);
2. one process, N torch threads (the same cores used by threads instead of ranks);
3. N ranks under torchrun (CPU, gloo), one thread each.

Prints each run's wall and CPU time, the ranks' own shares and wall/CPU seconds (from the run's
output), the wall speed-up of 3 over 1 and 2, that the sharded results equal the one-process
results, and the load average before and after: on a machine busy with other jobs wall times
include waiting for a core, so the speed-up there says little; CPU seconds are steadier.
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
    with tempfile.TemporaryDirectory() as tmp:
        generate_shapes(Path(tmp) / 'ds', n_train=1, n_val=a.images, imgsz=a.imgsz, progress=False)
        args = ['heatmap-eval', '--weights', str(weights()), '--data', 'ds/shapes.yaml', '--imgsz', str(a.imgsz),
                '--steps', str(a.steps)]
        one = [sys.executable, '-m', 'yolo_attn', *args]
        ranks = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(a.nproc), '--master_addr',
                 '127.0.0.1', '--master_port', str(free_port()), '-m', 'yolo_attn', *args]
        t1, c1, _ = timed([*one, '--project', 'one'], tmp, 1)
        tn, cn, _ = timed([*one, '--project', 'threads'], tmp, a.nproc)
        tr, cr, log = timed([*ranks, '--project', 'ranks'], tmp, 1)
        same = rows(Path(tmp) / 'one/exp/results.csv') == rows(Path(tmp) / 'ranks/exp/results.csv')
        n = len(rows(Path(tmp) / 'one/exp/results.csv'))
    print(f'heatmap-eval, {a.images} shapes images at {a.imgsz}, {n} matched detections, --steps {a.steps} '
          f'(wall time of the whole command, model loading included)')
    print(f'  1 process, 1 thread : {t1:6.1f} s wall, {c1:6.1f} s CPU')
    print(f'  1 process, {a.nproc} threads: {tn:6.1f} s wall, {cn:6.1f} s CPU')
    print(f'  {a.nproc} ranks, 1 thread  : {tr:6.1f} s wall, {cr:6.1f} s CPU (all ranks and the launcher)   '
          f'wall speed-up {t1 / tr:.2f}x over 1 thread, {tn / tr:.2f}x over {a.nproc} threads')
    for line in re.findall(r'heatmap-eval \S+: rank 0.*', log):
        print('  per rank: ' + line.split(': ', 1)[1])
    print(f'  sharded results.csv equal to one process: {same}')
    print(f'  load average before {load[0]:.1f}, after {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)')


if __name__ == '__main__':
    main()
