#!/usr/bin/env python
"""Produce the shipped starting checkpoint ``models/pretrained/yolo11n-shapes.pt`` (ultralytics).

The ultralytics counterpart of ``tools/pretrain_shapes.py``: a stock ``yolo11n.yaml`` trained from
scratch by ultralytics' own trainer (``YOLO(...).train``: its dataloader with mosaic, loss, EMA,
validation) on another seed of the shapes generator (seed 1; the demo uses 0), at 320. Two
settings differ from ultralytics' defaults, for the same reason as in the yolov5 script: ``nbs`` is
the batch size, so every batch is an optimizer step (ultralytics accumulates gradients up to a
nominal batch of 64: 1024 images would give 16 steps per epoch), and AdamW at a moderate fixed
learning rate with a cosine schedule. The run's ``best.pt``, already stripped by ultralytics'
``strip_optimizer`` (EMA weights in half precision, no optimizer), is copied to ``--out`` with a note;
an existing ``--out`` is never overwritten.

    OMP_NUM_THREADS=1 YOLO_CONFIG_DIR=/tmp/ycfg YOLO_OFFLINE=1 python tools/pretrain_ultralytics_shapes.py
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cfg', default='yolo11n.yaml', help='ultralytics model YAML (stock yolo11n by default)')
    p.add_argument('--data-dir', default='runs/pretrain/shapes-seed1-320', help='generated here if absent')
    p.add_argument('--train', type=int, default=1024, help='training images to generate')
    p.add_argument('--val', type=int, default=64, help='validation images to generate')
    p.add_argument('--seed', type=int, default=1, help='generator and training seed (the demo uses 0)')
    p.add_argument('--imgsz', type=int, default=320)
    p.add_argument('--batch', type=int, default=8, help='batch size, also the nominal batch (nbs)')
    p.add_argument('--lr', type=float, default=2e-3, help='peak AdamW learning rate')
    p.add_argument('--epochs', type=int, default=14)
    p.add_argument('--close-mosaic', type=int, default=3, help='last epochs without mosaic')
    p.add_argument('--threads', type=int, default=1, help='torch threads (1 is robust on a shared 2-core machine)')
    p.add_argument('--project', default='runs/pretrain', help='the ultralytics run goes to a new project/NAME*')
    p.add_argument('--name', default='yolo11n-shapes')
    p.add_argument('--out', default=str(ROOT / 'models' / 'pretrained' / 'yolo11n-shapes.pt'))
    return p.parse_args(argv)


def main(argv=None) -> int:
    opt = parse_args(argv)
    out = Path(opt.out)
    if out.exists():
        print(f'{out} exists; move it away first (nothing is overwritten)', file=sys.stderr)
        return 2
    import torch

    from yolo_attn.data.shapes import generate_shapes
    from yolo_attn.ultralytics import install
    install()
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO
    from ultralytics.nn.tasks import torch_safe_load

    torch_utils.NUM_THREADS = opt.threads  # select_device sets torch's threads to this
    torch.set_num_threads(opt.threads)
    data_dir = Path(opt.data_dir)
    yaml_path = data_dir / 'shapes.yaml'
    if not yaml_path.is_file():
        yaml_path = generate_shapes(data_dir, n_train=opt.train, n_val=opt.val, imgsz=opt.imgsz, seed=opt.seed)

    t0 = time.time()
    model = YOLO(opt.cfg)
    model.train(data=str(yaml_path.resolve()), epochs=opt.epochs, imgsz=opt.imgsz, batch=opt.batch, nbs=opt.batch,
                optimizer='AdamW', lr0=opt.lr, lrf=0.05, cos_lr=True, momentum=0.9, warmup_epochs=1,
                warmup_bias_lr=0.0, close_mosaic=opt.close_mosaic, seed=opt.seed, device='cpu', workers=0,
                cache='ram', plots=False, project=str(Path(opt.project).resolve()), name=opt.name, exist_ok=False,
                pretrained=False, amp=False)
    trainer = model.trainer
    best = Path(trainer.best)
    metrics = trainer.metrics or {}
    map50, map5095 = metrics.get('metrics/mAP50(B)', float('nan')), metrics.get('metrics/mAP50-95(B)', float('nan'))
    elapsed = time.time() - t0

    ckpt, _ = torch_safe_load(str(best))  # already stripped by ultralytics' final_eval (strip_optimizer)
    if ckpt.get('optimizer') is not None or ckpt.get('ema') is not None:
        print(f'{best}: not stripped (optimizer or EMA still in it)', file=sys.stderr)
        return 1
    ckpt['train_args'] = {k: v for k, v in ckpt.get('train_args', {}).items()
                          if k not in ('data', 'project', 'name', 'save_dir')}  # no paths of this machine
    ckpt['note'] = (f'stock {opt.cfg} pretrained on shapes seed {opt.seed} ({opt.train} images at {opt.imgsz}, '
                    f'{opt.epochs} epochs, batch {opt.batch}, one AdamW step per batch); val mAP50 {map50:.3f} '
                    f'mAP50-95 {map5095:.3f}')
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, 'xb') as f:  # never overwrites a file that appeared meanwhile
        f.write(buffer.getvalue())
    print(f'wrote {out} ({out.stat().st_size / 1e6:.1f} MB) from {best}: val mAP50 {map50:.3f} '
          f'mAP50-95 {map5095:.3f}, {opt.epochs} epochs in {elapsed / 60:.1f} min')
    return 0


if __name__ == '__main__':
    sys.exit(main())
