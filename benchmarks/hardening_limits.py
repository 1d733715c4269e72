"""Time and peak memory of the refusals of issue 12's exhaustion inputs (each in a fresh process).

    .venv/bin/python benchmarks/hardening_limits.py

1. a 1 KB YAML of nested aliases ("billion laughs", 9^9 leaves) read as a data YAML;
2. a model YAML row repeated 10^9 times built with ``build_model``;
3. a 12000x12000 PNG (17 KB on disk) decoded through the one image decoder.
Prints, per case: the outcome (the one-line error), seconds inside the call, and the process's
peak RSS (``ru_maxrss``) before and after it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r'''
import resource, sys, time
from pathlib import Path
import yolo_attn
yolo_attn.activate()
work = Path(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
try:
    if sys.argv[1] == 'alias':
        from yolo_attn.config.yamlfile import read_yaml
        read_yaml(work / 'bomb.yaml')
    elif sys.argv[1] == 'repeats':
        from yolo_attn.config.summary import build_model
        build_model(work / 'repeats.yaml')
    else:
        from yolo_attn.guards.images import imread
        imread(str(work / 'huge.png'))
    outcome = 'accepted'
except Exception as e:
    outcome = f'{type(e).__name__}: {str(e)[:110]}...'
dt = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f'{sys.argv[1]:8} {dt * 1000:8.1f} ms  peak RSS {before:6.0f} -> {after:6.0f} MB  {outcome}')
'''


def main():
    import yolov5
    from PIL import Image
    work = Path(tempfile.mkdtemp())
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + ''.join(
        f'{c}: &{c} [{", ".join([f"*{p}"] * 9)}]\n' for p, c in zip('abcdefgh', 'bcdefghi'))
    (work / 'bomb.yaml').write_text(bomb)
    stock = (Path(yolov5.__file__).parent / 'models' / 'yolov5n.yaml').read_text()
    (work / 'repeats.yaml').write_text(stock.replace('[-1, 3, C3, [128]]', '[-1, 1000000000, C3, [128]]'))
    Image.new('1', (12000, 12000)).save(work / 'huge.png')
    print(f'inputs: bomb.yaml {len(bomb)} bytes, huge.png {(work / "huge.png").stat().st_size} bytes')
    for case in ('alias', 'repeats', 'pixels'):
        out = subprocess.run([sys.executable, '-c', CASE, case, str(work)], capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr[-500:])


if __name__ == '__main__':
    main()
