"""``yolo-attn demo`` (``make demo``): the product end to end, offline, on the embedded dataset.

generate the shapes dataset -> train yolov5n-cbam from scratch on the CPU at 320 -> validate
best.pt; everything goes to one new folder, ``runs/demo/exp``, ``exp2``, ...
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .configs import project_models_dir

# Settings measured to reach mAP50 >= 0.9 within the 10-minute budget on a 2-core CPU (README).
DEMO = dict(cfg='yolov5n-cbam', imgsz=320, n_train=256, n_val=64, epochs=30, batch=16, seed=0)


def demo_hyp() -> Path:
    return project_models_dir().parent / 'data' / 'hyp.demo.yaml'


def run_demo(project='runs/demo', name='exp', **overrides) -> dict:
    """Run the demo into a new ``project/name*`` folder; return its summary (also saved as JSON)."""
    import yolov5.val as val
    from yolov5.utils.general import increment_path

    from .pipeline import run_script
    from .shapes import generate_shapes

    s = {**DEMO, **overrides}
    out = increment_path(Path(project) / name)
    t0 = time.time()
    data = generate_shapes(out / 'shapes', n_train=s['n_train'], n_val=s['n_val'], imgsz=s['imgsz'], seed=s['seed'])
    t_data = time.time()
    args = ['--data', data, '--cfg', s['cfg'], '--weights', '', '--epochs', s['epochs'], '--batch-size', s['batch'],
            '--imgsz', s['imgsz'], '--device', 'cpu', '--workers', '2', '--project', out, '--name', 'train',
            '--seed', s['seed'], '--noplots', '--cache', 'ram']  # not --noval: it crashes yolov5 7.0.14
    if demo_hyp().is_file():
        args += ['--hyp', demo_hyp()]
    run_script('train', [str(a) for a in args])
    t_train = time.time()
    best = out / 'train' / 'weights' / 'best.pt'
    (mp, mr, map50, map5095, *_), *_ = val.run(data=str(data), weights=str(best), imgsz=s['imgsz'], device='cpu',
                                                  batch_size=32, project=str(out), name='val', plots=True)
    t_val = time.time()
    summary = {'settings': s, 'data': str(data), 'weights': str(best), 'train_dir': str(out / 'train'),
               'val_dir': str(out / 'val'), 'precision': mp, 'recall': mr, 'mAP50': map50, 'mAP50-95': map5095,
               'seconds': {'data': round(t_data - t0, 1), 'train': round(t_train - t_data, 1),
                           'val': round(t_val - t_train, 1), 'total': round(t_val - t0, 1)}}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return {**summary, 'dir': str(out)}


def print_summary(summary: dict) -> None:
    sec = summary['seconds']
    print(f"\nyolo-attn demo finished in {sec['total']:.0f} s "
          f"(data {sec['data']:.0f} s, train {sec['train']:.0f} s, val {sec['val']:.0f} s)")
    print(f"  mAP50 {summary['mAP50']:.3f}   mAP50-95 {summary['mAP50-95']:.3f}   "
          f"(P {summary['precision']:.3f}, R {summary['recall']:.3f}) on the shapes val split")
    print(f"  dataset      {summary['data']}")
    print(f"  training run {summary['train_dir']}  (weights/best.pt, weights/last.pt, results.csv)")
    print(f"  validation   {summary['val_dir']}  (PR curve, confusion matrix, prediction mosaics)")
    print(f"  summary      {Path(summary['dir']) / 'summary.json'}")
