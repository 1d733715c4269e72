#!/usr/bin/env python
"""Produce the shipped starting checkpoint ``models/pretrained/yolov5n-shapes.pt``.

yolov5's train.py steps the optimizer once per nominal batch of 64 images, too few steps on the
demo's 256 images to learn from scratch (benchmarks/README.md, "The demo"). So a stock yolov5n is
pretrained here on another seed of the shapes generator (seed 1; the demo uses 0) with yolov5's own
pieces (``create_dataloader``, ``ComputeLoss``, ``smart_optimizer``, ``ModelEMA``, ``val.run``) but
one AdamW step per batch, and saved like ``strip_optimizer`` output.

    python tools/pretrain_shapes.py                  # writes models/pretrained/yolov5n-shapes.pt
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from copy import deepcopy
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yolo_attn  # noqa: E402,F401  (compat + registration)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--cfg', default='yolov5n.yaml', help='model YAML (stock yolov5n by default)')
    p.add_argument('--data-dir', default='runs/pretrain/shapes-seed1', help='generated here if absent')
    p.add_argument('--train', type=int, default=1024, help='training images to generate')
    p.add_argument('--val', type=int, default=64, help='validation images to generate')
    p.add_argument('--seed', type=int, default=1, help='generator seed (the demo uses 0)')
    p.add_argument('--imgsz', type=int, default=320)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--lr', type=float, default=2e-3, help='peak AdamW learning rate')
    p.add_argument('--steps', type=int, default=2400, help='optimizer steps (one per batch)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (1 is robust on a shared 2-core machine)')
    p.add_argument('--val-every', type=int, default=5, help='validate every N epochs')
    p.add_argument('--out', default=str(ROOT / 'models' / 'pretrained' / 'yolov5n-shapes.pt'))
    return p.parse_args(argv)


def main(argv=None) -> int:
    import yolov5.val as val
    from yolov5.models.yolo import Model
    from yolov5.utils.autoanchor import check_anchors
    from yolov5.utils.dataloaders import create_dataloader
    from yolov5.utils.general import check_img_size
    from yolov5.utils.loss import ComputeLoss
    from yolov5.utils.torch_utils import ModelEMA, smart_optimizer

    from yolo_attn.config.files import resolve_cfg
    from yolo_attn.integration.datasets import load_data_yaml
    from yolo_attn.data.shapes import generate_shapes

    opt = parse_args(argv)
    out = Path(opt.out)
    if out.exists():
        print(f'{out} exists; move it away first (nothing is overwritten)', file=sys.stderr)
        return 2
    data_dir = Path(opt.data_dir)
    yaml_path = data_dir / 'shapes.yaml'
    if not yaml_path.is_file():
        yaml_path = generate_shapes(data_dir, n_train=opt.train, n_val=opt.val, imgsz=opt.imgsz, seed=opt.seed)
    data = load_data_yaml(yaml_path)
    torch.manual_seed(opt.seed)
    torch.set_num_threads(opt.threads)

    hyp = {'lr0': opt.lr, 'lrf': 0.05, 'momentum': 0.937, 'weight_decay': 5e-4, 'box': 0.05, 'cls': 0.5,
           'cls_pw': 1.0, 'obj': 1.0, 'obj_pw': 1.0, 'iou_t': 0.2, 'anchor_t': 4.0, 'fl_gamma': 0.0,
           'hsv_h': 0.015, 'hsv_s': 0.7, 'hsv_v': 0.4, 'degrees': 0.0, 'translate': 0.1, 'scale': 0.5,
           'shear': 0.0, 'perspective': 0.0, 'flipud': 0.0, 'fliplr': 0.5, 'mosaic': 1.0, 'mixup': 0.0,
           'copy_paste': 0.0, 'label_smoothing': 0.0}
    nc, names = int(data['nc']), data['names']
    model = Model(str(resolve_cfg(opt.cfg)), ch=3, nc=nc)
    gs = max(int(model.stride.max()), 32)
    imgsz = check_img_size(opt.imgsz, gs, floor=gs * 2)
    root = Path(data['path'])
    loader, dataset = create_dataloader(str(root / data['train']), imgsz, opt.batch, gs, hyp=hyp, augment=True,
                                        cache='ram', workers=1, shuffle=True, seed=opt.seed, prefix='train: ')
    val_loader = create_dataloader(str(root / data['val']), imgsz, opt.batch * 2, gs, hyp=hyp, cache='ram',
                                   rect=True, workers=1, pad=0.5, prefix='val: ')[0]
    check_anchors(dataset, model=model, thr=hyp['anchor_t'], imgsz=imgsz)
    nl = model.model[-1].nl
    hyp['box'] *= 3 / nl  # the loss-gain scaling train.py applies
    hyp['cls'] *= nc / 80 * 3 / nl
    hyp['obj'] *= (imgsz / 640) ** 2 * 3 / nl
    model.nc, model.hyp, model.names = nc, hyp, names
    optimizer = smart_optimizer(model, 'AdamW', opt.lr, hyp['momentum'], hyp['weight_decay'])
    ema = ModelEMA(model)
    compute_loss = ComputeLoss(model)

    t0, step, epoch, best = time.time(), 0, 0, (-1.0, None)
    warmup = 100
    while step < opt.steps:
        model.train()
        bar = tqdm(loader, desc=f'epoch {epoch}', unit='batch')
        for imgs, targets, _, _ in bar:
            if step == opt.steps:
                break
            lr = opt.lr * (hyp['lrf'] + (1 - hyp['lrf']) * 0.5 * (1 + math.cos(math.pi * step / opt.steps)))
            lr *= min(1.0, (step + 1) / warmup)
            for g in optimizer.param_groups:
                g['lr'] = lr
            loss, items = compute_loss(model(imgs.float() / 255), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
            ema.update(model)
            step += 1
            bar.set_postfix(box=f'{items[0]:.4f}', obj=f'{items[1]:.4f}', cls=f'{items[2]:.4f}', lr=f'{lr:.2e}')
        epoch += 1
        if epoch % opt.val_every == 0 or step == opt.steps:
            (mp, mr, map50, map5095, *_), *_ = val.run(data, batch_size=opt.batch * 2, imgsz=imgsz, half=False,
                                                       model=ema.ema, dataloader=val_loader, plots=False,
                                                       compute_loss=None, save_dir=data_dir.parent)  # its results.html
            print(f'epoch {epoch} step {step} ({time.time() - t0:.0f} s): mAP50 {map50:.3f} mAP50-95 {map5095:.3f}')
            if map5095 > best[0]:
                best = (map5095, deepcopy(ema.ema).half())
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({'model': best[1], 'ema': None, 'optimizer': None, 'updates': None, 'epoch': -1,
                'best_fitness': None, 'date': None,
                'note': f'stock {opt.cfg} pretrained on shapes seed {opt.seed} ({opt.train} images, {step} steps)'},
               out)
    print(f'wrote {out} (best val mAP50-95 {best[0]:.3f}, {step} steps in {time.time() - t0:.0f} s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
