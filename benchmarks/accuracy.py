#!/usr/bin/env python
"""Accuracy on the shapes dataset: stock vs attention blocks per ``--attn-start``, several seeds.

Every model starts from the shipped stock checkpoint, transferred by layer correspondence
(``yolo-attn train --weights … --cfg …``); per run: the epoch-0 validation, the last epoch's (EMA),
each block's strength (attention.csv) and what the saved last.pt holds. One JSON line per run in
``--log``; tables with ``--report LOG``. yolov5's NMS time limit is lifted (complete validations).
Figures and the commands that made them: benchmarks/README.md.

    OMP_NUM_THREADS=1 python benchmarks/accuracy.py --difficulties easy --seeds 0 1 2 --epochs 20 \
        --train 64 --val 32 --batch 8 --cfgs yolov5n yolov5n-cbam --attn-starts ramp paper residual --log LOG
    python benchmarks/accuracy.py --report LOG
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

PRETRAINED = Path(__file__).resolve().parents[1] / 'models' / 'pretrained' / 'yolov5n-shapes.pt'
CFGS = ['yolov5n', 'yolov5n-se', 'yolov5n-cbam', 'yolov5n-eca', 'yolov5n-ca', 'yolov5n-simam']
EPOCH0 = re.compile(r'epoch 0 \(after transfer\): mAP50 ([0-9.]+) mAP50-95 ([0-9.]+)')


class Epoch0(logging.Handler):
    """Keeps the last ``epoch 0 (after transfer)`` figures yolo-attn train logs."""

    def __init__(self):
        super().__init__()
        self.found = None

    def emit(self, record):
        m = EPOCH0.search(record.getMessage())
        if m:
            self.found = (float(m.group(1)), float(m.group(2)))


def no_nms_time_limit():
    """yolov5's ``non_max_suppression`` reads ``time.time()`` for its limit: give its module a clock
    that never advances (only ``yolov5.utils.general``, only in this process)."""
    import time as time_module

    import yolov5.utils.general as general
    from yolo_attn.integration.compat import ModuleView
    general.time = ModuleView(time_module, time=lambda: 0.0)


def last_epoch(run: Path) -> tuple[float, float]:
    with open(run / 'results.csv') as f:
        rows = [{k.strip(): v.strip() for k, v in r.items()} for r in csv.DictReader(f)]
    return float(rows[-1]['metrics/mAP_0.5']), float(rows[-1]['metrics/mAP_0.5:0.95'])


def train_one(data, cfg, seed, opt, work, handler):
    from yolo_attn.integration.scripts import run_script
    name = f'{data.parent.name}-{cfg}-s{seed}-{opt.attn_start}'
    handler.found = None
    t = time.time()
    run_script('train', ['--data', str(data), '--cfg', cfg, '--weights', str(PRETRAINED),
                         '--epochs', str(opt.epochs), '--batch-size', str(opt.batch), '--imgsz', str(opt.imgsz),
                         '--device', 'cpu', '--workers', '0', '--noplots', '--cache', 'ram', '--seed', str(seed),
                         '--attn-start', opt.attn_start, '--project', str(work / 'runs'), '--name', name,
                         *(['--attn-ramp', str(opt.attn_ramp)] if opt.attn_ramp is not None else [])])
    m50, m = last_epoch(work / 'runs' / name)
    e0 = handler.found or (float('nan'), float('nan'))
    start = opt.attn_start + (f' {opt.attn_ramp:g} ep' if opt.attn_ramp is not None and opt.attn_start == 'ramp' else '')
    return {'difficulty': data.parent.name, 'cfg': cfg, 'seed': seed, 'attn_start': start,
            'epochs': opt.epochs, 'train': opt.train, 'val': opt.val, 'imgsz': opt.imgsz, 'batch': opt.batch,
            'epoch0_map50': e0[0], 'epoch0_map': e0[1], 'map50': m50, 'map': m, 'wall_s': round(time.time() - t, 1),
            **numerics(), **gamma_sizes(work / 'runs' / name / 'weights' / 'last.pt'),
            **block_changes(work / 'runs' / name)}


def block_changes(run: Path) -> dict:
    """Each block's strength after the last epoch (``attention.csv``: mean |y - x| / mean |x| on 4
    training images, EMA model) and whether the saved last.pt still holds a blend."""
    path = run / 'attention.csv'
    if not path.exists():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    last = max(int(r['epoch']) for r in rows)
    changes = {r['layer']: float(r['change']) for r in rows if int(r['epoch']) == last}
    from yolo_attn.integration.attn_start import checkpoint_starts
    from yolo_attn.integration.checkpoints import load_checkpoint
    starts = checkpoint_starts(load_checkpoint(run / 'weights' / 'last.pt'))
    return {'change': changes, 'change_mean': sum(changes.values()) / len(changes),
            'blends_left': sum(kind == 'blend' for kind, _ in starts.values())}


def gamma_sizes(weights: Path) -> dict:
    """Largest and mean |residual scale| in the run's final weights (train.py saves the EMA model
    as ``model``): how far the blocks moved from the identity; absent for stock."""
    from yolo_attn.integration.attn_start import checkpoint_gammas
    from yolo_attn.integration.checkpoints import load_checkpoint
    gammas = [g.abs() for g in checkpoint_gammas(load_checkpoint(weights)).values()]
    if not gammas:
        return {}
    return {'gamma_max': max(float(g.max()) for g in gammas),
            'gamma_mean': sum(float(g.sum()) for g in gammas) / sum(g.numel() for g in gammas)}


def numerics() -> dict:
    """The CPU kernels and thread count of this process. The same run on other kernels
    (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``: oneDNN's convolutions, ATen's
    element-wise ops) differs only in float rounding, which makes it the control for how far
    rounding alone moves a result (``report``). ATen's setting alone gave stock seed 0 the same
    figures to the last digit here: the convolutions are oneDNN's."""
    import os

    import torch
    kernels = torch.backends.cpu.get_cpu_capability()
    if os.environ.get('ONEDNN_MAX_CPU_ISA'):
        kernels += f"/oneDNN {os.environ['ONEDNN_MAX_CPU_ISA']}"
    return {'kernels': kernels, 'threads': torch.get_num_threads()}


def epoch0_only(data, cfg, mode, opt, work):
    """The ``epoch 0 (after transfer)`` validation alone: the transfer and start train.py's hooks
    make (layer correspondence, ``attn_start.plan``/``prepare``), then ``validate_after_transfer``."""
    from types import SimpleNamespace

    import yaml
    from yolov5.models.yolo import Model

    from yolo_attn.config.files import load_cfg
    from yolo_attn.config.transfer import intersect_by_correspondence
    from yolo_attn.integration import attn_start
    from yolo_attn.integration.checkpoints import load_checkpoint
    import yolov5
    ckpt = load_checkpoint(PRETRAINED)
    src = ckpt['model'].float()
    target = Model(load_cfg(cfg), nc=5)
    kept, _ = intersect_by_correspondence(src.state_dict(), target.state_dict(), src.yaml, target.yaml,
                                          exclude=['anchor'])
    target.load_state_dict(kept, strict=False)
    resolved, fresh, carried = attn_start.plan(mode, ckpt, src.yaml, target.yaml)
    attn_start.prepare(target, resolved, fresh, carried)
    hyp = yaml.safe_load((Path(yolov5.__file__).parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text())
    run_opt = SimpleNamespace(data=str(data), imgsz=opt.imgsz, batch_size=opt.batch, single_cls=False, hyp=hyp,
                              workers=0, save_dir=str(work / 'epoch0'))
    (work / 'epoch0').mkdir(exist_ok=True)  # val.run writes results.html there
    m50, m = attn_start.validate_after_transfer(target, run_opt)
    return {'difficulty': data.parent.name, 'cfg': cfg, 'seed': None, 'attn_start': resolved, 'epochs': 0,
            'train': opt.train, 'val': opt.val, 'imgsz': opt.imgsz, 'batch': opt.batch,
            'epoch0_map50': m50, 'epoch0_map': m, 'map50': float('nan'), 'map': float('nan'), 'wall_s': 0}


def epoch0_report(rows) -> str:
    """Epoch-0 validation (after the transfer, before any step) per model and start."""
    out = []
    for diff in dict.fromkeys(r['difficulty'] for r in rows):
        sel = [r for r in rows if r['difficulty'] == diff and r['epochs'] == 0]
        if not sel:
            continue
        starts = list(dict.fromkeys(r['attn_start'] for r in sel))
        out.append(f"\n{diff}: epoch 0 (after transfer, before any step), {sel[0]['val']} val images at "
                   f"{sel[0]['imgsz']}: mAP50 / mAP50-95")
        out.append('| model | ' + ' | '.join(f'{s} start' for s in starts) + ' |')
        out.append('|---|' + '---:|' * len(starts))
        for cfg in dict.fromkeys(r['cfg'] for r in sel):
            got = {r['attn_start']: r for r in sel if r['cfg'] == cfg}
            cells = [f"{got[s]['epoch0_map50']:.3f} / {got[s]['epoch0_map']:.3f}" if s in got else '–' for s in starts]
            out.append(f"| {cfg} | {' | '.join(cells)} |")
    return '\n'.join(out)


def mean_std(values):
    values = [v for v in values if v == v]
    if not values:
        return '–'
    if len(values) == 1:
        return f'{values[0]:.4f} (n=1)'
    return f'{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}'


def label_kernels(rows) -> list[dict]:
    """Rows whose CPU kernels differ from most runs' get them in their model name ("yolov5n
    [AVX2]"): a stock run on other kernels is then a model of its own, paired with stock by seed
    like the blocks — the control for rounding alone. Rows logged without ``kernels`` are one
    more kind (never labelled)."""
    kinds = [r.get('kernels') for r in rows]
    common = max(set(kinds), key=kinds.count) if kinds else None
    return [dict(r, cfg=f"{r['cfg']} [{r['kernels']}]") if r.get('kernels') not in (None, common) else r
            for r in rows]


def largest_gamma(rows) -> str:
    found = [r['gamma_max'] for r in rows if 'gamma_max' in r]
    return f'{max(found):.1e}' if found else ''


def effect_ratio(r, rows) -> str:
    """A run's block strength over the ``paper`` start's, same model, seed and budget."""
    paper = [p for p in rows if p['cfg'] == r['cfg'] and p['seed'] == r['seed'] and p['attn_start'] == 'paper'
             and p['difficulty'] == r['difficulty'] and p['epochs'] == r['epochs'] and 'change_mean' in p]
    if 'change_mean' not in r or not paper:
        return ''
    return f"{r['change_mean'] / paper[0]['change_mean']:.2f}"


def report(rows) -> str:
    """Per difficulty and budget: each model and start, mAP (mean ± std over seeds), Δ vs stock paired
    by seed, the blocks' strength (mean |y - x| / mean |x|, last epoch) and its ratio to the paper start."""
    out = [epoch0_report(rows)]
    rows = label_kernels([r for r in rows if r['epochs'] > 0])
    for diff, epochs in dict.fromkeys((r['difficulty'], r['epochs']) for r in rows):
        sel = [r for r in rows if r['difficulty'] == diff and r['epochs'] == epochs]
        r0 = sel[0]
        stock = {r['seed']: r['map'] for r in sel if r['cfg'] == 'yolov5n'}
        out.append(f"\n{diff}: {r0['train']} train / {r0['val']} val at {r0['imgsz']}, {epochs} epoch(s), batch "
                   f"{r0['batch']}, from the shipped stock checkpoint, CPU")
        out.append('| model | --attn-start | seeds | epoch 0 mAP50-95 | mAP50-95 | Δ vs stock (paired) '
                   '| block strength | vs paper | max \\|γ\\| | blends left |')
        out.append('|---|---|---|---:|---:|---:|---:|---:|---:|---:|')
        for cfg, start in dict.fromkeys((r['cfg'], r['attn_start']) for r in sel):
            rs = sorted((r for r in sel if r['cfg'] == cfg and r['attn_start'] == start), key=lambda r: r['seed'])
            deltas = [r['map'] - stock[r['seed']] for r in rs if r['seed'] in stock] if cfg != 'yolov5n' else []
            strength = [r['change_mean'] for r in rs if 'change_mean' in r]
            ratios = [float(x) for x in (effect_ratio(r, sel) for r in rs) if x]
            out.append(f"| {cfg} | {start if cfg != 'yolov5n' else '–'} | {','.join(str(r['seed']) for r in rs)} "
                       f"| {mean_std([r['epoch0_map'] for r in rs])} | {mean_std([r['map'] for r in rs])} "
                       f"| {mean_std(deltas) if deltas else ''} | {mean_std(strength) if strength else ''} "
                       f"| {f'{min(ratios):.2f}–{max(ratios):.2f}' if ratios else ''} | {largest_gamma(rs)} "
                       f"| {sum(r.get('blends_left', 0) for r in rs) if strength else ''} |")
    return '\n'.join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--cfgs', nargs='+', default=CFGS)
    ap.add_argument('--difficulties', nargs='+', default=['hard', 'easy'], choices=['easy', 'hard'])
    ap.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--train', type=int, default=64, help='training images per dataset')
    ap.add_argument('--val', type=int, default=32, help='validation images per dataset')
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--attn-starts', nargs='+', default=['ramp'], choices=['ramp', 'paper', 'residual'])
    ap.add_argument('--attn-ramp', type=float, default=None, help="train's --attn-ramp (epochs; default: its own)")
    ap.add_argument('--epoch0-only', action='store_true',
                    help='no training: validate each transferred model as it starts, with both --attn-start modes')
    ap.add_argument('--log', default=None, help='append one JSON line per run here (default: in the work folder)')
    ap.add_argument('--report', default=None, help='only print the tables of an existing log')
    opt = ap.parse_args()
    if opt.report:
        print(report([json.loads(line) for line in Path(opt.report).read_text().splitlines() if line.strip()]))
        return
    import yolo_attn
    yolo_attn.activate()
    from yolo_attn.data.shapes import generate_shapes
    no_nms_time_limit()
    work = Path(tempfile.mkdtemp(prefix='yolo-attn-accuracy-'))
    log = Path(opt.log or work / 'accuracy.jsonl')
    handler = Epoch0()
    logging.getLogger('yolov5').addHandler(handler)
    rows = []
    jobs = [(d, s, c, a) for d in opt.difficulties for s in opt.seeds for c in opt.cfgs
            for a in (opt.attn_starts if c != 'yolov5n' else opt.attn_starts[:1])]
    datasets = {d: generate_shapes(work / d, n_train=opt.train, n_val=opt.val, imgsz=opt.imgsz, seed=0,
                                   progress=False, difficulty=d) for d in opt.difficulties}
    if opt.epoch0_only:
        jobs = [(d, mode, c) for d in opt.difficulties for c in opt.cfgs
                for mode in (['ramp', 'paper'] if c != 'yolov5n' else ['paper'])]
    for d, seed, cfg, *start in tqdm(jobs, desc='runs'):
        if opt.epoch0_only:
            row = epoch0_only(datasets[d], cfg, seed, opt, work)
        else:
            opt.attn_start = start[0]
            row = train_one(datasets[d], cfg, seed, opt, work, handler)
        rows.append(row)
        with open(log, 'a') as f:
            f.write(json.dumps(row) + '\n')
    print(f'\nlog: {log}')
    print(report(rows))


if __name__ == '__main__':
    main()
