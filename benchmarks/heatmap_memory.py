"""Peak memory of ``yolo-attn heatmap`` on one large image as the number of detections grows.

    .venv/bin/python benchmarks/heatmap_memory.py [--size 3000] [--tiles 3] [--dets 2 8 24] [--imgsz 960]

The shipped shapes model (``yolov5n-shapes.pt``) explains a mosaic of ``--tiles`` x ``--tiles``
generated shapes images (320 px each) enlarged to ``--size`` pixels square, with ``--max-det``
set to each of ``--dets`` (``--conf-thres 0.01``) and ``--save-maps``. Per run: detections
explained, numpy's peak allocation during ``run()`` (``tracemalloc``: maps, figures, PNG
buffers; torch's own tensors are not counted) and, for scale, one original-size map's bytes. Each run goes to a fresh process after a
warm-up in it, so one-off allocations do not count. Issue 12 point 4: before the streaming change
every detection's map was held at the original size (peak growing by one map per detection).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r'''
import sys, tracemalloc
from pathlib import Path
from yolo_attn.heatmaps.runner import run
src, out, imgsz, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
kw = dict(weights='yolov5n-shapes.pt', source=src, imgsz=imgsz, conf_thres=0.01, save_maps=True, project=out)
run(max_det=1, name='warm-up', **kw)
tracemalloc.start()
m = run(max_det=n, name=f'n{n}', **kw)
peak = tracemalloc.get_traced_memory()[1]
print(len(m['images'][0]['detections']), peak)
'''


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, default=3000, help='image side (pixels)')
    p.add_argument('--tiles', type=int, default=3, help='shapes images per side of the mosaic')
    p.add_argument('--dets', type=int, nargs='+', default=[2, 8, 24], help='--max-det values')
    p.add_argument('--imgsz', type=int, default=960)
    opt = p.parse_args()
    import cv2

    from yolo_attn.data.shapes import generate_shapes
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        import numpy as np
        generate_shapes(tmp / 'ds', n_train=1, n_val=opt.tiles ** 2, imgsz=320, progress=False)
        ims = [cv2.imread(str(f)) for f in sorted((tmp / 'ds' / 'images' / 'val').glob('*.jpg'))]
        im = np.vstack([np.hstack(ims[r * opt.tiles:(r + 1) * opt.tiles]) for r in range(opt.tiles)])
        src = tmp / 'big.png'
        cv2.imwrite(str(src), cv2.resize(im, (opt.size, opt.size), interpolation=cv2.INTER_LINEAR))
        map_mb = opt.size * opt.size * 4 / 1e6
        print(f'image {opt.size}x{opt.size}, imgsz {opt.imgsz}: one original-size map {map_mb:.1f} MB')
        print('max_det  detections  numpy peak (MB)')
        for n in opt.dets:
            out = subprocess.run([sys.executable, '-c', CASE, str(src), str(tmp / 'runs'), str(opt.imgsz), str(n)],
                                 capture_output=True, text=True, check=True)
            dets, peak = out.stdout.split()[-2:]
            print(f'{n:7d}  {int(dets):10d}  {int(peak) / 1e6:15.1f}')


if __name__ == '__main__':
    main()
