#!/usr/bin/env python
"""Accuracy on the shapes dataset with ultralytics' trainer: stock yolo11n vs attention YAMLs, several seeds.

Every model starts from the shipped stock checkpoint ``models/pretrained/yolo11n-shapes.pt``
(``pretrained=``; an attention YAML gets it by layer correspondence, its new blocks started as
``attn_start`` says), fine-tuned by ``YOLO(cfg).train`` with ultralytics' defaults otherwise. Per run:
epoch 0 (the trainer's ``epoch 0 (after transfer)`` validation; for stock, the checkpoint validated
once, it is the same model), the last epoch's mAP (EMA model, ``results.csv``), each block's
strength after the last epoch (``attention.csv``) and whether last.pt still holds a blend. One JSON
line per run in ``--log``; tables with ``--report LOG``. Figures: benchmarks/README.md.

    OMP_NUM_THREADS=1 YOLO_CONFIG_DIR=/tmp/ycfg python benchmarks/ultralytics_accuracy.py --seeds 0 1 2 \\
        --epochs 10 --cfgs yolo11n yolo11n-cbam --log benchmarks/logs/ultralytics-accuracy-10-epochs.jsonl
    python benchmarks/ultralytics_accuracy.py --report benchmarks/logs/ultralytics-accuracy-10-epochs.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

PRETRAINED = Path(__file__).resolve().parents[1] / 'models' / 'pretrained' / 'yolo11n-shapes.pt'
STOCK = 'yolo11n'


def last_epoch(run: Path) -> tuple[float, float]:
    with open(run / 'results.csv') as f:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f)]
    return float(rows[-1]['metrics/mAP50(B)']), float(rows[-1]['metrics/mAP50-95(B)'])


def block_changes(run: Path) -> dict:
    """Each block's strength after the last epoch (``attention.csv``) and the blends left in last.pt."""
    path = run / 'attention.csv'
    if not path.exists():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    last = max(int(r['epoch']) for r in rows)
    changes = {r['layer']: float(r['change']) for r in rows if int(r['epoch']) == last}
    mixes = {r['layer']: r['mix'] for r in rows if int(r['epoch']) == last}
    from ultralytics.nn.tasks import torch_safe_load
    ckpt, _ = torch_safe_load(str(run / 'weights' / 'last.pt'))
    blends = sum(k.endswith('attn_blend') for k in (ckpt.get('ema') or ckpt['model']).state_dict())
    return {'change': changes, 'mix': mixes, 'change_mean': sum(changes.values()) / len(changes), 'blends_left': blends}


def stock_epoch0(data, opt, work) -> tuple[float, float]:
    """The shipped checkpoint validated once with the runs' settings: every run's starting model
    (stock's, and the attention models' with ``ramp``/``residual``)."""
    from ultralytics import YOLO
    m = YOLO(str(PRETRAINED)).val(data=str(data), imgsz=opt.imgsz, batch=opt.batch * 2, device='cpu', plots=False,
                                  project=str(work / 'val'), name='stock', verbose=False)
    return float(m.box.map50), float(m.box.map)


def train_one(data, cfg, seed, opt, work, epoch0_stock) -> dict:
    from ultralytics import YOLO
    name = f'{cfg}-s{seed}-{opt.attn_start}'
    t = time.time()
    model = YOLO(f'{cfg}.yaml')
    model.train(data=str(data), epochs=opt.epochs, batch=opt.batch, imgsz=opt.imgsz, pretrained=str(PRETRAINED),
                seed=seed, device='cpu', workers=0, cache='ram', plots=False, project=str(work / 'runs'), name=name,
                exist_ok=True, **({'attn_start': opt.attn_start} if cfg != STOCK else {}),
                **({'attn_ramp': opt.attn_ramp} if opt.attn_ramp is not None else {}))
    run = work / 'runs' / name
    start = getattr(model.trainer, '_yolo_attn_start', None)
    e0 = start.epoch0 if start is not None and start.epoch0 is not None else (epoch0_stock if cfg == STOCK else None)
    m50, m = last_epoch(run)
    return {'cfg': cfg, 'seed': seed, 'attn_start': opt.attn_start if cfg != STOCK else '-', 'epochs': opt.epochs,
            'train': opt.train, 'val': opt.val, 'imgsz': opt.imgsz, 'batch': opt.batch,
            'epoch0_map50': e0[0] if e0 else float('nan'), 'epoch0_map': e0[1] if e0 else float('nan'),
            'map50': m50, 'map': m, 'wall_s': round(time.time() - t, 1), **block_changes(run)}


def mean_std(xs) -> str:
    xs = [x for x in xs if x == x]
    if not xs:
        return '–'
    if len(xs) == 1:
        return f'{xs[0]:.4f} (n=1)'
    return f'{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}'


def report(rows) -> str:
    out = []
    for epochs in dict.fromkeys(r['epochs'] for r in rows):
        sel = [r for r in rows if r['epochs'] == epochs]
        r0 = sel[0]
        stock = {r['seed']: r['map'] for r in sel if r['cfg'] == STOCK}
        out.append(f"\n{r0['train']} train / {r0['val']} val at {r0['imgsz']}, {epochs} epochs, batch {r0['batch']}, "
                   f"from yolo11n-shapes.pt, ultralytics' trainer, CPU")
        out.append('| model | attn_start | seeds | epoch 0 mAP50-95 | mAP50-95 | mAP50 | Δ mAP50-95 vs stock (paired) '
                   '| block strength (layers) | blends left |')
        out.append('|---|---|---|---:|---:|---:|---:|---|---:|')
        for cfg, start in dict.fromkeys((r['cfg'], r['attn_start']) for r in sel):
            rs = sorted((r for r in sel if r['cfg'] == cfg and r['attn_start'] == start), key=lambda r: r['seed'])
            deltas = [r['map'] - stock[r['seed']] for r in rs if r['seed'] in stock] if cfg != STOCK else []
            layers = sorted({k for r in rs for k in r.get('change', {})}, key=int)
            strength = ', '.join(f"{k}: {mean_std([r['change'][k] for r in rs if k in r.get('change', {})])}"
                                 for k in layers)
            out.append(f"| {cfg} | {start} | {','.join(str(r['seed']) for r in rs)} "
                       f"| {mean_std([r['epoch0_map'] for r in rs])} | {mean_std([r['map'] for r in rs])} "
                       f"| {mean_std([r['map50'] for r in rs])} | {mean_std(deltas) if deltas else ''} "
                       f"| {strength} | {sum(r.get('blends_left', 0) for r in rs) if layers else ''} |")
    return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cfgs', nargs='+', default=[STOCK, 'yolo11n-cbam'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--train', type=int, default=256, help='training images (the demo: 256)')
    ap.add_argument('--val', type=int, default=64, help='validation images (the demo: 64)')
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--attn-start', default='ramp', choices=['ramp', 'paper', 'residual'])
    ap.add_argument('--attn-ramp', type=float, default=None, help='epochs (default: the trainer\'s own)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--log', default=None, help='append one JSON line per run here (default: in the work folder)')
    ap.add_argument('--report', default=None, help='only print the table of an existing log')
    opt = ap.parse_args()
    if opt.report:
        print(report([json.loads(line) for line in Path(opt.report).read_text().splitlines() if line.strip()]))
        return
    import torch

    from yolo_attn.data.shapes import generate_shapes
    from yolo_attn.ultralytics import install
    install()
    import ultralytics.utils.torch_utils as torch_utils
    torch_utils.NUM_THREADS = opt.threads  # ultralytics' select_device sets torch's threads to this
    torch.set_num_threads(opt.threads)
    work = Path(tempfile.mkdtemp(prefix='yolo-attn-ultralytics-accuracy-'))
    log = Path(opt.log or work / 'accuracy.jsonl')
    data = generate_shapes(work / 'shapes', n_train=opt.train, n_val=opt.val, imgsz=opt.imgsz, seed=0, progress=False)
    e0 = stock_epoch0(data, opt, work)
    rows = []
    for seed, cfg in tqdm([(s, c) for s in opt.seeds for c in opt.cfgs], desc='runs'):
        row = train_one(data, cfg, seed, opt, work, e0)
        rows.append(row)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, 'a') as f:
            f.write(json.dumps(row) + '\n')
    print(f'\nlog: {log}\nwork folder: {work}')
    print(report(rows))


if __name__ == '__main__':
    main()
