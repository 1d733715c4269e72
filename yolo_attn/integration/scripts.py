"""``yolo-attn train | val | detect | export``: yolov5's own scripts, with the plugin registered.

Every option of the matching yolov5 script passes through unchanged (same names, same defaults:
``yolo-attn train --help`` is train.py's help). Before yolov5 runs, a preflight turns the
mistakes users make most into one line each: a model YAML that does not build, a data YAML or
dataset that is missing or malformed, labels out of range, weights that are missing, truncated,
not a checkpoint or refused by the allowlist, and a run directory that would be written into.
Pretrained weights given with a different ``--cfg`` are transferred by layer correspondence
(``transfer``), so inserted attention rows do not cost the stock weights after them.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path

from . import attn_start
from .checkpoints import CheckpointError, load_checkpoint
from ..config.files import load_cfg, resolve_cfg
from .datasets import check_data
from ..errors import UserError

SCRIPTS = ('train', 'val', 'detect', 'export')


def _is_url(s) -> bool:
    return str(s).startswith(('http://', 'https://', 'rtsp://', 'rtmp://'))


def check_weights(weights) -> list:
    """Each weights file exists locally and loads through the secure loader; returns the checkpoints."""
    out = []
    for w in weights if isinstance(weights, (list, tuple)) else [weights]:
        if _is_url(w):
            raise CheckpointError(f'{w}: URLs are not fetched (yolo-attn works offline); give a local .pt')
        if not Path(w).is_file():
            raise CheckpointError(f"weights not found: {w} (yolo-attn never downloads; give a local .pt file"
                                  f"{', or --weights ' + repr('') + ' to train from scratch' if len(out) == 0 else ''})")
        if Path(w).suffix == '.pt':
            out.append(load_checkpoint(w))
    return out


def check_run_dir(opt) -> None:
    """``--exist-ok`` may reuse an empty run folder, never write into one that holds results."""
    target = Path(opt.project) / opt.name
    if getattr(opt, 'exist_ok', False) and target.is_dir() and any(target.iterdir()):
        raise UserError(f'{target} already holds results and --exist-ok would write into it; '
                        f'choose another --name (without --exist-ok a new {opt.name}2, {opt.name}3, ... is made)')


def preflight_train(opt) -> None:
    if opt.resume:
        last = opt.resume if isinstance(opt.resume, str) else None
        if last is None:
            from yolov5.utils.general import get_latest_run
            last = get_latest_run()
            if not last:
                raise UserError('--resume: no last.pt found under the current folder; give --resume path/to/last.pt')
        ckpt = check_weights(last)[0]
        if ckpt.get('epoch', -1) < 0 or ckpt.get('optimizer') is None:
            raise UserError(f'--resume {last}: that training is finished (its optimizer state was stripped), '
                            f'nothing to resume; start a new run with --weights {last}')
        attn_start.install(opt, ckpt)  # the residual scales the run holds
        return
    if opt.noval:
        raise UserError('--noval: yolov5 7.0.14 train.py fails after the first epoch with it (map50s is only set '
                        'when validating); leave it out')
    if opt.evolve:
        raise UserError('--evolve is not supported by yolo-attn train (it would fetch from cloud storage); '
                        'use yolov5 directly')
    check_run_dir(opt)
    if opt.cfg:
        opt.cfg = str(resolve_cfg(opt.cfg).resolve())
    ckpts = check_weights(opt.weights) if opt.weights else []
    if not opt.cfg and not ckpts:
        raise UserError("give --cfg (a model YAML) or --weights (a local .pt), or both")
    d = check_data(opt.data)
    from ..config.summary import build_model
    if opt.cfg:
        build_model(opt.cfg, nc=len(d['names']))  # a YAML that cannot build fails here, in one line
    if ckpts and opt.cfg:
        import yolov5.train as train

        from ..config.transfer import correspondence_intersect
        src = (ckpts[0].get('ema') or ckpts[0]['model']).yaml
        train.intersect_dicts = correspondence_intersect(src, load_cfg(opt.cfg))
    attn_start.install(opt, ckpts[0] if ckpts else None, src if ckpts and opt.cfg else None,
                       load_cfg(opt.cfg) if ckpts and opt.cfg else None)


def preflight_val(opt) -> None:
    check_run_dir(opt)
    check_weights(opt.weights)
    check_data(opt.data, splits=(opt.task,) if opt.task in ('train', 'val', 'test') else ('val',))


def preflight_detect(opt) -> None:
    check_run_dir(opt)
    check_weights(opt.weights)
    source = str(opt.source)
    if _is_url(source):
        raise UserError(f'--source {source}: URLs and streams are not fetched (yolo-attn works offline)')
    if not source.isnumeric() and not Path(source).exists():
        import glob
        if not glob.glob(source, recursive=True):
            raise UserError(f'--source {source}: no such file, folder or glob match')


EXPORT_SUFFIXES = {'torchscript': '.torchscript', 'onnx': '.onnx', 'engine': '.engine', 'pb': '.pb',
                   'tflite': '.tflite', 'openvino': '_openvino_model', 'coreml': '.mlmodel',
                   'saved_model': '_saved_model', 'tfjs': '_web_model', 'paddle': '_paddle_model'}


def preflight_export(opt) -> None:
    """Weights load securely, and no earlier export next to them would be overwritten."""
    check_weights(opt.weights)
    for w in opt.weights if isinstance(opt.weights, list) else [opt.weights]:
        for fmt in opt.include:
            suffix = EXPORT_SUFFIXES.get(fmt.lower())
            target = Path(w).with_name(Path(w).stem + (suffix or ''))
            if suffix and target.exists():
                raise UserError(f'{target} exists and export would overwrite it; move it away or export a copy '
                                f'of {Path(w).name} from another folder')


PREFLIGHT = {'train': preflight_train, 'val': preflight_val, 'detect': preflight_detect, 'export': preflight_export}


@contextlib.contextmanager
def _patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def run_script(script: str, argv: list[str]) -> int:
    """Run yolov5's ``script`` with ``argv`` as its command line, after the preflight."""
    module = importlib.import_module(f'yolov5.{script}')
    original_parse_opt = module.parse_opt

    def parse_opt(*args, **kwargs):
        opt = original_parse_opt(*args, **kwargs)
        PREFLIGHT[script](opt)
        return opt

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(sys, 'argv', [f'yolo-attn {script}', *argv]))
        stack.enter_context(_patched(module, 'parse_opt', parse_opt))
        for name in ('intersect_dicts', 'smart_optimizer'):  # the train preflight may swap them for this run only
            if hasattr(module, name):
                stack.enter_context(_patched(module, name, getattr(module, name)))
        if script == 'train':  # --attn-start (attn_start.py)
            stack.enter_context(_patched(module, 'argparse', attn_start.argparse_for_train()))
        if script == 'train':
            module.main(module.parse_opt())
        else:
            module.main()
    return 0


__all__ = ['SCRIPTS', 'run_script', 'check_weights']
