"""``yolo-attn demo --model yolo11n-cbam``: the demo with ultralytics' trainer, same data, same summary.

generate the shapes dataset (seed 0, as the yolov5 demo) -> train yolo11n-cbam on the CPU at 320
with ultralytics' trainer, from the shipped stock yolo11n checkpoint (pretrained on seed 1,
``tools/pretrain_ultralytics_shapes.py``) moved across the inserted CBAMs, which start at blend 0 and
ramp in (``attn_start``) -> validate best.pt (ultralytics' val) -> each block's strength on val
images -> per-detection heatmaps for a few val images; one new folder, ``runs/demo/exp*``.
"""

from __future__ import annotations

import time
from pathlib import Path

def run(out: Path, s: dict, weights, block_strength) -> dict:
    """The demo's steps into the claimed folder ``out`` with settings ``s``; the summary dict.
    ``block_strength(weights, data, imgsz)``: the yolov5 demo's measurement (``demo.demo_block_strength``)."""
    from ..data.shapes import generate_shapes
    from . import install
    from .parsing import ultralytics_version
    install()
    from ultralytics import YOLO
    print(f"backend: ultralytics {ultralytics_version()} ({s['cfg']}.yaml)", flush=True)
    t0 = time.time()
    data = generate_shapes(out / 'shapes', n_train=s['n_train'], n_val=s['n_val'], imgsz=s['imgsz'], seed=s['seed'])
    t_data = time.time()
    YOLO(f"{s['cfg']}.yaml").train(data=str(data), epochs=s['epochs'], batch=s['batch'], imgsz=s['imgsz'],
                                   device='cpu', workers=0, project=str(out), name='train', exist_ok=True,
                                   pretrained=str(weights) if weights else False, seed=s['seed'], cache='ram',
                                   plots=False)
    t_train = time.time()
    best = out / 'train' / 'weights' / 'best.pt'
    metrics = YOLO(str(best)).val(data=str(data), imgsz=s['imgsz'], batch=32, device='cpu', project=str(out),
                                  name='val', exist_ok=True, plots=True)
    box = metrics.box
    t_val = time.time()
    blocks = block_strength(best, data, s['imgsz'])
    val_images = sorted((Path(data).parent / 'images' / 'val').glob('*.jpg'))
    heatmaps = None
    if s['heatmap_images']:
        from ..heatmaps.runner import run as heatmap_run
        sources = out / 'heatmap_images.txt'
        sources.write_text(''.join(f'{p}\n' for p in val_images[:s['heatmap_images']]))
        heatmaps = heatmap_run(weights=best, source=sources, imgsz=s['imgsz'], project=out, name='heatmaps')['save_dir']
    t_heat = time.time()
    return {'backend': f'ultralytics {ultralytics_version()}', 'settings': s, 'data': str(data),
            'weights': str(best), 'train_dir': str(out / 'train'), 'val_dir': str(out / 'val'),
            'heatmaps_dir': heatmaps, 'precision': float(box.mp), 'recall': float(box.mr),
            'mAP50': float(box.map50), 'mAP50-95': float(box.map), 'blocks': blocks,
            'seconds': {'data': round(t_data - t0, 1), 'train': round(t_train - t_data, 1),
                        'val': round(t_val - t_train, 1), 'heatmaps': round(t_heat - t_val, 1),
                        'total': round(t_heat - t0, 1)}}
