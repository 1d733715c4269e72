"""``yolo-attn demo`` (``make demo``): the product end to end, offline, on the embedded dataset.

generate the shapes dataset -> train yolov5n-cbam on the CPU at 320, starting from the shipped
stock yolov5n checkpoint (pretrained on another seed of the generator, ``tools/pretrain_shapes.py``)
transferred across the inserted CBAM layers -> validate best.pt -> per-detection heatmaps for a
few val images; everything goes to one new folder, ``runs/demo/exp``, ``exp2``, ... ``--model
yolo11n-cbam`` (any n-scale model of ``MODELS``): the same with ultralytics' trainer, from the shipped
stock yolo11n checkpoint (``ultralytics.demo``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config.files import resolve_weights
from .data import SIZES
from .guards.paths import PROJECTS, RUN_NAME

# Settings of the measured demo run (benchmarks/README.md, "The demo").
DEMO = dict(cfg='yolov5n-cbam', **SIZES, epochs=20, batch=16, weights='pretrained', heatmap_images=4)
BLOCK_NAMES = ('', '-se', '-cbam', '-eca', '-ca', '-simam')
# --model: the n-scale models of each backend, each started from its shipped stock checkpoint
MODELS = {**{f'yolov5n{b}': 'yolov5n-shapes.pt' for b in BLOCK_NAMES},
          **{f'yolo11n{b}': 'yolo11n-shapes.pt' for b in BLOCK_NAMES}}


def pretrained_weights(cfg: str = DEMO['cfg']) -> Path:
    """The shipped starting point of ``cfg``: stock yolov5n (or yolo11n) pretrained on shapes seed 1
    (never the demo's seed 0)."""
    return resolve_weights(MODELS[cfg])


def check_model(model: str) -> str:
    """A ``--model`` name the demo can start (``.yaml`` optional), or one line naming those it can."""
    from .errors import OptionError
    name = model[:-5] if model.endswith('.yaml') else model
    if name not in MODELS:
        raise OptionError('model', f"{model}: the demo trains {', '.join(MODELS)} (each from its shipped stock "
                                   f"checkpoint); other models: yolo-attn train or yolo-attn yolo")
    return name


def is_ultralytics(cfg: str) -> bool:
    return not cfg.startswith('yolov5')


def run_demo(project=PROJECTS['demo'], name=RUN_NAME, **overrides) -> dict:
    """Run the demo into a new ``project/name*`` folder; return its summary (also saved as JSON)."""
    s = {**DEMO, **overrides}
    s['cfg'] = check_model(s['cfg'])
    weights = pretrained_weights(s['cfg']) if s['weights'] == 'pretrained' else s['weights']
    if is_ultralytics(s['cfg']):
        return _run_ultralytics(project, name, s, weights)
    import yolov5.val as val

    from .data.shapes import generate_shapes
    from .guards.paths import claim_run_dir
    from .integration.scripts import check_weights, run_script

    if weights:
        check_weights(weights)  # a bad --weights is one line before anything is generated
    out = claim_run_dir(project, name)  # the one run-folder rule: a new exp, exp2, ... claimed atomically
    t0 = time.time()
    data = generate_shapes(out / 'shapes', n_train=s['n_train'], n_val=s['n_val'], imgsz=s['imgsz'], seed=s['seed'])
    t_data = time.time()
    args = ['--data', data, '--cfg', s['cfg'], '--weights', weights or '', '--epochs', s['epochs'],
            '--batch-size', s['batch'],
            '--imgsz', s['imgsz'], '--device', 'cpu', '--workers', '2', '--project', out, '--name', 'train',
            '--seed', s['seed'], '--noplots', '--cache', 'ram']  # not --noval: it crashes yolov5 7.0.14
    run_script('train', [str(a) for a in args])
    t_train = time.time()
    best = out / 'train' / 'weights' / 'best.pt'
    (mp, mr, map50, map5095, *_), *_ = val.run(data=str(data), weights=str(best), imgsz=s['imgsz'], device='cpu',
                                                  batch_size=32, project=str(out), name='val', plots=True)
    t_val = time.time()
    blocks = demo_block_strength(best, data, s['imgsz'])
    heatmaps = None
    if s['heatmap_images']:
        from .heatmaps.runner import run as heatmap_run
        sources = out / 'heatmap_images.txt'
        sources.write_text(''.join(f'{p}\n' for p in sorted((Path(data).parent / 'images' / 'val').glob('*.jpg'))
                                   [:s['heatmap_images']]))
        heatmaps = heatmap_run(weights=best, source=sources, imgsz=s['imgsz'], project=out, name='heatmaps')['save_dir']
    t_heat = time.time()
    summary = {'settings': s, 'data': str(data), 'weights': str(best), 'train_dir': str(out / 'train'),
               'val_dir': str(out / 'val'), 'heatmaps_dir': heatmaps, 'precision': mp, 'recall': mr,
               'mAP50': map50, 'mAP50-95': map5095, 'blocks': blocks,
               'seconds': {'data': round(t_data - t0, 1), 'train': round(t_train - t_data, 1),
                           'val': round(t_val - t_train, 1), 'heatmaps': round(t_heat - t_val, 1),
                           'total': round(t_heat - t0, 1)}}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return {**summary, 'dir': str(out)}


def _run_ultralytics(project, name, s: dict, weights) -> dict:
    """The demo with ultralytics' trainer (``ultralytics.demo``): same data, same summary."""
    from .config.backend import ULTRALYTICS, backend_of_checkpoint
    from .config.files import resolve_weights as find
    from .errors import UserError
    from .guards.paths import claim_run_dir
    if weights:
        weights = find(weights, UserError)
        if backend_of_checkpoint(weights) != ULTRALYTICS:
            raise UserError(f"--weights {weights}: not an ultralytics checkpoint; {s['cfg']} trains with ultralytics")
    out = claim_run_dir(project, name)
    from .ultralytics.demo import run
    summary = run(out, s, weights, demo_block_strength)
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return {**summary, 'dir': str(out)}


def demo_block_strength(weights, data, imgsz, n=8) -> list[dict]:
    """Each attention block of the trained model: its mix and how much it changes its features on
    ``n`` val images (``blocks.strength``)."""
    from .blocks.strength import block_strength
    from .heatmaps.api import first_images, load_model
    model = load_model(weights)
    ims = first_images(model, sorted((Path(data).parent / 'images' / 'val').glob('*.jpg'))[:n], imgsz, n)
    return [{'layer': r.layer, 'block': r.name, 'mix': r.mix, 'change': round(r.change, 4)}
            for r in block_strength(model, ims)]


def print_summary(summary: dict) -> None:
    sec = summary['seconds']
    print(f"\nyolo-attn demo finished in {sec['total']:.0f} s "
          f"(data {sec['data']:.0f} s, train {sec['train']:.0f} s, val {sec['val']:.0f} s, "
          f"heatmaps {sec['heatmaps']:.0f} s)")
    if 'backend' in summary:
        print(f"  model        {summary['settings']['cfg']}, trained by {summary['backend']}")
    print(f"  mAP50 {summary['mAP50']:.3f}   mAP50-95 {summary['mAP50-95']:.3f}   "
          f"(P {summary['precision']:.3f}, R {summary['recall']:.3f}) on the shapes val split")
    for b in summary.get('blocks', []):
        print(f"  layer {b['layer']:>2} {b['block']:<8} ({b['mix']}) changes its features by {100 * b['change']:.1f} % "
              f"on val images")
    print(f"  dataset      {summary['data']}")
    print(f"  training run {summary['train_dir']}  (weights/best.pt, weights/last.pt, results.csv)")
    print(f"  validation   {summary['val_dir']}  (PR curve, confusion matrix, prediction mosaics)")
    if summary['heatmaps_dir']:
        print(f"  heatmaps     {summary['heatmaps_dir']}  (one PNG per detection, overviews, heatmaps.json)")
    print(f"  summary      {Path(summary['dir']) / 'summary.json'}")
