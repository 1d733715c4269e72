"""``yolo-attn train`` given an ultralytics model: the backend follows the model.

``--cfg`` naming an ultralytics model YAML (no ``anchors:``; shipped names such as
``yolo11n-cbam.yaml``, ultralytics' own such as ``yolo11n.yaml``, or a path), or ``--weights`` an
ultralytics checkpoint without ``--cfg``: the common flags are translated to ultralytics' train
keys and ultralytics' trainer runs (its progress bars, ``args.yaml``, ``results.csv``), in a new
``--project/--name`` folder (``runs/train/exp``, ``exp2``, … as yolov5's). A yolov5 flag with no
ultralytics equivalent is one line naming it. A yolov5 YAML or checkpoint goes to yolov5 unchanged
(``ultralytics_train`` returns None).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from ..errors import UserError, is_int

SCALE = re.compile(r'(\d+)([nslmx])(.+)?$')  # ultralytics' yaml_model_load: yolo11n-cbam -> yolo11-cbam
DEFAULT_PROJECT, DEFAULT_NAME = 'runs/train', 'exp'  # yolov5's layout, which this command keeps

# flag -> (ultralytics key, argparse keywords): what the command translates
FLAGS = {
    '--data': ('data', {}),
    '--epochs': ('epochs', {'type': int}),
    '--batch-size': ('batch', {'type': int}),
    '--imgsz': ('imgsz', {'type': int}),
    '--device': ('device', {}),
    '--project': ('project', {}),
    '--name': ('name', {}),
    '--seed': ('seed', {'type': int}),
    '--workers': ('workers', {'type': int}),
    '--attn-start': ('attn_start', {'choices': ('ramp', 'paper', 'residual')}),
    '--attn-ramp': ('attn_ramp', {'type': float}),
    '--cache': ('cache', {'nargs': '?', 'const': 'ram', 'choices': ('ram', 'disk')}),
    '--optimizer': ('optimizer', {'choices': ('SGD', 'Adam', 'AdamW')}),
    '--cos-lr': ('cos_lr', {'action': 'store_true', 'default': None}),
    '--patience': ('patience', {'type': int}),
    '--freeze': ('freeze', {'type': int, 'nargs': '+'}),
    '--save-period': ('save_period', {'type': int}),
    '--single-cls': ('single_cls', {'action': 'store_true', 'default': None}),
    '--noplots': ('plots', {'action': 'store_false', 'default': None}),
}
ALIASES = {'--batch-size': ['--batch'], '--imgsz': ['--img', '--img-size']}  # yolov5's own spellings
AT_LEAST = {'epochs': 1, 'batch': 1, 'imgsz': 32, 'workers': 0, 'seed': 0, 'patience': 1}


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def _model_and_backend(argv: list[str]):
    """``(cfg, weights)`` as given when the model is ultralytics', else None (yolov5's as before)."""
    p = _Parser(add_help=False, allow_abbrev=False)
    p.add_argument('--cfg', default='')
    p.add_argument('--weights', nargs='*', default=[])
    try:
        known, _ = p.parse_known_args(argv)
    except UserError:
        return None  # yolov5's parser says what is wrong
    weights = known.weights[0] if len(known.weights) == 1 else None
    if known.cfg:
        return (known.cfg, weights) if ultralytics_yaml(known.cfg) else None
    if weights:
        from ..config.backend import ULTRALYTICS, backend_of_checkpoint
        from ..config.files import resolve_weights
        try:
            path = resolve_weights(weights)  # a path, or a shipped checkpoint by name
        except UserError:
            return None
        if path.is_file() and backend_of_checkpoint(path) == ULTRALYTICS:
            return None, weights
    return None


def ultralytics_yaml(cfg: str) -> Path | None:
    """The model YAML ``cfg`` names when it is an ultralytics one (ours by short name with or without
    the scale letter, ultralytics' own, or a path), else None. Nothing is imported from ultralytics."""
    import importlib.util

    from ..config.backend import ULTRALYTICS, backend_of
    from ..config.files import load_cfg, resolve_cfg
    path = Path(cfg)
    name = path.name if path.suffix in ('.yaml', '.yml') else path.name + '.yaml'
    candidates = [cfg] if path.parent != Path('.') or path.is_file() else [name, SCALE.sub(r'\1\3', name)]
    for c in candidates:
        try:
            found = resolve_cfg(c)
        except UserError:
            continue
        try:
            return found if backend_of(load_cfg(found)) == ULTRALYTICS else None
        except UserError:
            return None
    if path.parent != Path('.'):
        return None
    spec = importlib.util.find_spec('ultralytics')
    if spec is None or spec.origin is None:
        return None
    stock = Path(spec.origin).parent / 'cfg' / 'models'
    for c in dict.fromkeys(candidates):
        hits = sorted(stock.rglob(c))
        if hits:
            return hits[0]
    return None


def make_parser() -> _Parser:
    p = _Parser(prog='yolo-attn train', add_help=False, allow_abbrev=False)
    p.add_argument('--cfg', default='')
    p.add_argument('--weights', nargs='*', default=[])
    for flag, (key, kwargs) in FLAGS.items():
        p.add_argument(flag, *ALIASES.get(flag, []), dest=key, **{'default': None, **kwargs})
    return p


def translate(argv: list[str]) -> tuple[str, dict]:
    """``(model, train keys)`` for ultralytics' ``YOLO(model).train(**keys)``; one line for anything
    it cannot take."""
    args, unknown = make_parser().parse_known_args(argv)
    if unknown:
        flag = next((a for a in unknown if a.startswith('-')), unknown[0]).split('=')[0]
        raise UserError(f"{flag}: no ultralytics equivalent in yolo-attn train (it translates "
                        f"{', '.join(['--cfg', '--weights', *FLAGS])}); for ultralytics' own keys: yolo-attn yolo "
                        f"detect train model=... data=... key=value")
    from ..guards import images
    from ..guards.paths import refuse_urls
    refuse_urls(vars(args))
    keys = {k: v for k, v in vars(args).items() if k not in ('cfg', 'weights') and v is not None}
    for k, low in AT_LEAST.items():
        if k in keys and not (is_int(keys[k]) and keys[k] >= low) and not (k == 'batch' and keys[k] == -1):
            raise UserError(f'--{next(f for f, (key, _) in FLAGS.items() if key == k).lstrip("-")} {keys[k]}: '
                            f'must be a whole number >= {low}')
    if 'imgsz' in keys:
        images.check_imgsz(keys['imgsz'])
    if 'freeze' in keys:
        keys['freeze'] = keys['freeze'][0] if len(keys['freeze']) == 1 else keys['freeze']
    data = keys.get('data')
    if not data:
        raise UserError('--data: give the data YAML of your dataset (yolo-attn downloads none)')
    if not Path(data).is_file():
        raise UserError(f'--data {data}: no such file (yolo-attn downloads no dataset)')
    keys['data'] = str(Path(data).resolve())
    if len(args.weights) > 1:
        raise UserError(f'--weights: one checkpoint to start from, got {len(args.weights)}')
    model = args.cfg
    weights = args.weights[0] if args.weights else ''
    if weights:
        from ..config.backend import ULTRALYTICS, backend_of_checkpoint
        from ..config.files import resolve_weights
        path = resolve_weights(weights)
        if backend_of_checkpoint(path) != ULTRALYTICS:
            raise UserError(f'--weights {weights}: a yolov5 checkpoint, and --cfg {args.cfg} is an ultralytics model '
                            f'YAML; start from an ultralytics checkpoint, or give a yolov5 --cfg')
        if model:
            keys['pretrained'] = str(path)
        else:
            model = str(path)
    elif model:
        keys['pretrained'] = False  # --weights '' or none: from scratch, as yolov5's train.py
    if model == args.cfg and not Path(model).is_file():  # a name: ultralytics finds it (scale from the name)
        model = model if Path(model).suffix in ('.yaml', '.yml') else model + '.yaml'
    keys.setdefault('project', DEFAULT_PROJECT)
    keys.setdefault('name', DEFAULT_NAME)
    keys['project'] = str(Path(keys['project']).resolve())
    from ..guards.paths import check_run_name
    check_run_name(keys['project'], keys['name'])
    return model, keys


def ultralytics_train(argv: list[str]) -> int | None:
    """Run ``yolo-attn train ARGV`` with ultralytics' trainer when the model is ultralytics'; None when
    it is yolov5's (the caller runs yolov5's train.py, unchanged)."""
    if '-h' in argv or '--help' in argv or _model_and_backend(argv) is None:
        return None
    model, keys = translate(argv)
    from . import install
    from .parsing import ultralytics_version
    install()
    print(f'backend: ultralytics {ultralytics_version()} ({Path(model).name})', flush=True)
    from ..guards.paths import claim_run_dir
    run = claim_run_dir(keys['project'], keys['name'])  # a new exp, exp2, ... (yolov5's layout), claimed atomically
    keys.update(name=run.name, exist_ok=True)  # ultralytics trains into that empty folder
    from ultralytics import YOLO
    try:
        YOLO(model).train(**keys)
    except SyntaxError as e:  # ultralytics' way of saying an argument is not valid
        raise UserError(str(e).strip().splitlines()[0]) from None
    except RuntimeError as e:
        from .cli import raise_user_cause
        raise_user_cause(e)
        raise
    return 0
