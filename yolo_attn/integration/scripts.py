"""``yolo-attn train | val | detect | export``: yolov5's own scripts, with the plugin registered.

Every option of the yolov5 script passes through unchanged (plus ``--max-pixels``). A preflight first
turns the commonest mistakes (URLs, bad YAMLs, datasets, weights, image sizes, export software, run
folders) into one line each; while yolov5 runs, run folders are claimed atomically
(``guards.paths.claim_run_dir``), its ``assert``s on user input become one line, and Ctrl-C says where
the files are. Pretrained weights with a different ``--cfg`` transfer by layer correspondence
(``transfer``). See docs/training.md.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

from . import attn_start, distributed
from .compat import YOLOV5_SCRIPTS
from .formats import BACKENDS, EXPORT_NEEDS, EXPORT_SUFFIXES, export_failures, export_formats, not_installed
from .checkpoints import UNSAFE_ENV, CheckpointError, exported_format, load_checkpoint
from ..config.files import load_cfg, resolve_cfg, resolve_weights
from ..config.yamlfile import read_yaml
from .datasets import check_data
from ..errors import OptionError, UserError, is_int
from ..guards import images
from ..guards.paths import check_run_name, claim_run_dir, refuse_url, refuse_urls
from ..torchrun import rank

SCRIPTS = YOLOV5_SCRIPTS  # the one list (compat)
RUNS_GRAPH_OPS = ('TensorFlow SavedModel', 'TensorFlow GraphDef')  # may hold file I/O ops, Keras Lambda code


def check_weights(weights, require_pt=False) -> list:
    """Each weights file exists locally; a PyTorch file loads through the secure loader (whatever
    its suffix), an exported one has its runtime installed. Returns the loaded checkpoints."""
    out = []
    for w in weights if isinstance(weights, (list, tuple)) else [weights]:
        refuse_url(w, '--weights')
        w = str(resolve_weights(w, CheckpointError, "--weights '' trains from scratch" if require_pt else ''))
        fmt = exported_format(w)
        if fmt in RUNS_GRAPH_OPS and not require_pt and os.environ.get(UNSAFE_ENV) != '1':
            raise CheckpointError(f'{w}: a {fmt} can hold graph operations that read and write files (and Keras '
                                  f'Lambda layers hold Python code), so yolo-attn does not run one; give the .pt or '
                                  f'its ONNX/OpenVINO/TFLite export. Only for a file you trust: {UNSAFE_ENV}=1')
        if fmt is not None and not require_pt:
            missing = not_installed(BACKENDS.get(fmt, ()))
            if missing:
                raise CheckpointError(f"{w}: running a {fmt} model needs {', '.join(missing)}, which is not installed "
                                      f"(yolo-attn installs nothing): pip install {' '.join(missing)}, or use the .pt")
            continue
        out.append(load_checkpoint(w))
        if require_pt and Path(w).suffix != '.pt':
            raise CheckpointError(f'{w}: yolov5 train.py takes weights ending in .pt; rename it to '
                                  f'{Path(w).with_suffix(".pt").name}')
    return out


AT_LEAST = {'epochs': 1, 'batch_size': 1, 'workers': 0, 'max_det': 1, 'vid_stride': 1, 'line_thickness': 1,
            'seed': 0}
FRACTIONS = ('conf_thres', 'iou_thres', 'label_smoothing')  # 0 to 1


def check_numbers(opt) -> None:
    """Counts and thresholds yolov5 would meet with a ZeroDivisionError, a ValueError deep in the
    DataLoader or a silent empty run: each refused in one line (train's --batch-size -1 is autobatch)."""
    for key, low in AT_LEAST.items():
        value = getattr(opt, key, None)
        if value is None or (key == 'batch_size' and value == -1 and hasattr(opt, 'evolve')):
            continue
        if not is_int(value) or value < low:
            raise OptionError(key, f'{value!r}: must be a whole number >= {low}')
    for key in FRACTIONS:
        value = getattr(opt, key, None)
        if value is not None and not 0 <= value <= 1:  # also NaN
            raise OptionError(key, f'{value!r}: must be between 0 and 1')


def preflight_common(opt) -> None:
    refuse_urls(vars(opt))
    check_numbers(opt)
    if hasattr(opt, 'name') and hasattr(opt, 'project'):
        check_run_name(opt.project, opt.name)
    if hasattr(opt, 'imgsz'):
        images.check_imgsz(opt.imgsz)


def preflight_train(opt) -> None:
    if opt.evolve:
        raise UserError('--evolve is not supported by yolo-attn train (it would fetch from cloud storage); '
                        'use yolov5 directly')
    if opt.resume:
        return preflight_resume(opt)
    check_cache(opt.cache, '--cache')
    if opt.noval:
        raise UserError('--noval: yolov5 7.0.14 train.py fails after the first epoch with it (map50s is only set '
                        'when validating); leave it out')
    if opt.cfg:
        opt.cfg = str(resolve_cfg(opt.cfg).resolve())
        from ..config.backend import ULTRALYTICS, backend_of
        if backend_of(load_cfg(opt.cfg)) == ULTRALYTICS:
            raise UserError(f'--cfg {opt.cfg}: an ultralytics model YAML (no anchors:); train it with ultralytics\' own '
                            f'trainer: yolo-attn yolo detect train model={Path(opt.cfg).name} data={opt.data} ...')
    ckpts = check_weights(opt.weights, require_pt=True) if opt.weights else []
    if not opt.cfg and not ckpts:
        raise UserError("give --cfg (a model YAML) or --weights (a local .pt), or both")
    d = check_data(opt.data)
    from ..config.summary import build_model
    if opt.cfg:
        model = build_model(opt.cfg, nc=len(d['names']))  # a YAML that cannot build fails here, in one line
    else:
        model = ckpts[0].get('ema') or ckpts[0]['model']
    check_freeze(opt.freeze, len(model.model))
    opt.hyp = str(resolve_hyp(opt.hyp))
    if ckpts and opt.cfg:
        import yolov5.train as train

        from ..config.transfer import correspondence_intersect
        src = (ckpts[0].get('ema') or ckpts[0]['model']).yaml
        train.intersect_dicts = correspondence_intersect(src, load_cfg(opt.cfg))
    attn_start.install(opt, ckpts[0] if ckpts else None)  # --attn-start: how new blocks start


def check_freeze(freeze, n: int) -> None:
    """train.py's ``--freeze``: one number N freezes layers 0..N-1, several freeze those layers. All
    ``n`` layers frozen leaves nothing to train (a RuntimeError at the first backward pass)."""
    frozen = set(range(freeze[0])) if len(freeze) == 1 else set(freeze)
    if set(range(n)) <= frozen:
        raise UserError(f"--freeze {' '.join(map(str, freeze))}: freezes all {n} layers of the model, nothing would "
                        f"train; freeze fewer (--freeze {n - 1} keeps the Detect head trainable)")


def check_cache(cache, where) -> None:
    """``--cache disk`` would write an .npy beside every image of the user's dataset (``untrusted``)."""
    if cache == 'disk':
        raise UserError(f'{where} disk writes an .npy file beside every image of the dataset, and yolo-attn writes '
                        f'nothing into your dataset folder: use --cache ram (or no --cache)')


def resolve_hyp(hyp) -> Path:
    """The hyp YAML as a path that exists (yolov5's own are found by name, as ``check_yaml`` does,
    also when its folder was given relative to another working folder), checked by ``check_hyp``."""
    import yolov5
    from yolov5.utils.general import check_yaml

    from .resume import check_hyp
    path = Path(str(hyp))
    shipped = Path(yolov5.__file__).parent / 'data' / 'hyps' / path.name
    if not path.is_file() and path.parent.parts[-2:] == ('data', 'hyps') and shipped.is_file():
        path = shipped
    path = Path(check_yaml(str(path)))
    check_hyp(read_yaml(path), path)
    return path.resolve()


def preflight_resume(opt) -> None:
    """Validate the run folder (``resume``) and remember it: training is pinned to it."""
    import yolov5.train as train

    from .resume import check_resume, run_dir_of
    parse_opt = getattr(train.parse_opt, 'original', train.parse_opt)  # yolov5's, not the preflighted one
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
    run_dir = run_dir_of(Path(last))
    opt_yaml = run_dir / 'opt.yaml'
    options = read_yaml(opt_yaml) if opt_yaml.is_file() else ckpt.get('opt')
    with _patched(sys, 'argv', ['train']):
        defaults = vars(parse_opt(True))
    where = opt_yaml if opt_yaml.is_file() else f'{last} (its opt)'
    check_resume(options, where, defaults, check_data)
    check_cache(options.get('cache'), f'{where}: cache:')
    opt.yolo_attn_run_dir = str(run_dir)
    attn_start.install(opt, ckpt)  # carry the run's blends / residual scales (attn_start.py)


VAL_TASKS = ('train', 'val', 'test', 'speed')  # val.py's --task values; 'study' is refused below


def preflight_val(opt) -> None:
    if opt.task not in VAL_TASKS + ('study',):
        raise UserError(f"--task {opt.task}: unknown; choose from {', '.join(VAL_TASKS)}")
    if opt.task == 'study':
        raise UserError("--task study writes study_*.txt and study.png into the working folder and zips them with "
                        "an external program; run val once per --imgsz instead (each run in its own runs/val/exp)")
    check_weights(opt.weights)
    check_data(opt.data, splits=(opt.task,) if opt.task in ('train', 'val', 'test') else ('val',))


def check_source(source) -> None:
    """A local file, folder, glob or .txt list; a camera index that opens; no streams or screens."""
    source = str(source)
    if source.isnumeric():
        import cv2
        cap = cv2.VideoCapture(int(source))
        opened = cap.isOpened()
        cap.release()
        if not opened:
            raise UserError(f'--source {source}: no camera {source} could be opened (give an image, folder or video)')
        return
    if source.lower().startswith('screen') or source.endswith('.streams'):
        raise UserError(f'--source {source}: screen capture and .streams lists are not supported by yolo-attn '
                        f'(they need network streams or extra packages); give images, a folder or a video')
    try:
        Path(source).resolve(strict=True)
    except RuntimeError:
        raise UserError(f'--source {source}: a symlink loop (it points back at itself)') from None
    except OSError:
        import glob
        if Path(source).is_symlink():
            raise UserError(f'--source {source}: a broken or looping symlink') from None
        if not glob.glob(source, recursive=False):
            raise UserError(f'--source {source}: no such file, folder or glob match') from None


def preflight_detect(opt) -> None:
    if opt.update:
        raise UserError(f'--update rewrites {opt.weights[0] if opt.weights else "the weights"} in place (strips its '
                        f'optimizer); yolo-attn never overwrites your files: leave --update out')
    check_weights(opt.weights)
    check_source(opt.source)


def preflight_export(opt) -> None:
    """Known formats whose software is installed, weights that load securely, and no earlier
    export next to them that would be overwritten."""
    formats = export_formats(opt.include)
    for fmt in formats:
        modules, programs = EXPORT_NEEDS[fmt]
        missing = not_installed(modules + (('onnxsim',) if fmt == 'onnx' and opt.simplify else ()), programs)
        if missing:
            raise UserError(f"--include {fmt}: needs {', '.join(missing)}, which is not installed; yolo-attn never "
                            f"installs software or reaches the network: install it yourself, then export again")
    check_weights(opt.weights, require_pt=True)
    for w in opt.weights if isinstance(opt.weights, list) else [opt.weights]:
        for fmt in formats:
            target = Path(w).with_name(Path(w).stem + EXPORT_SUFFIXES[fmt])
            if target.exists():
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


def _claim(path, exist_ok=False, sep='', mkdir=False):
    """``increment_path`` for the scripts' run folders: claimed atomically (``claim_run_dir``)."""
    path = Path(path)
    return claim_run_dir(path.parent, path.name, exist_ok)


def _pinned_train(train, opt_holder):
    """yolov5's ``train()``, with a resumed run's ``save_dir`` pinned to its own folder."""

    def run(hyp, opt, device, callbacks):
        pinned = getattr(opt_holder.get('opt'), 'yolo_attn_run_dir', None)
        if opt.resume and pinned:
            opt.save_dir = pinned
        opt.save_dir = distributed.shared_run_dir(opt.save_dir)
        opt_holder['save_dir'] = opt.save_dir
        if attn_start.current() is not None:  # a resumed run's own options (epochs, ramp, folder)
            attn_start.current().opt = opt
        return train(hyp, opt, device, callbacks)

    return run


def pop_max_pixels(argv: list[str]) -> list[str]:
    """Take ``--max-pixels N`` (or ``--max-pixels=N``) out of a yolov5 command line and apply it."""
    out, it = [], iter(argv)
    for a in it:
        if a == '--max-pixels':
            images.set_max_pixels(next(it, None))
        elif a.startswith('--max-pixels='):
            images.set_max_pixels(a.split('=', 1)[1])
        else:
            out.append(a)
    return out


def run_script(script: str, argv: list[str]) -> int:
    """Run yolov5's ``script`` with ``argv`` as its command line, after the preflight."""
    argv = pop_max_pixels(list(argv))
    module = importlib.import_module(f'yolov5.{script}')
    original_parse_opt = module.parse_opt
    state = {}

    def parse_opt(*args, **kwargs):
        opt = original_parse_opt(*args, **kwargs)
        preflight_common(opt)
        PREFLIGHT[script](opt)
        state['opt'] = opt
        return opt

    parse_opt.original = original_parse_opt

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(sys, 'argv', [f'yolo-attn {script}', *argv]))
        stack.enter_context(_patched(module, 'parse_opt', parse_opt))
        if hasattr(module, 'intersect_dicts'):  # the train preflight may swap it for this run only
            stack.enter_context(_patched(module, 'intersect_dicts', module.intersect_dicts))
        if hasattr(module, 'increment_path') and rank() <= 0:
            stack.enter_context(_patched(module, 'increment_path', _claim))
        if script == 'detect':
            stack.enter_context(_patched(module, 'LoadImages', images.readable_images_class()))
        if script == 'train':
            stack.enter_context(_patched(module, 'train', _pinned_train(module.train, state)))
            stack.enter_context(attn_start.patched_train(module))  # --attn-start, smart_optimizer hook
        failures = stack.enter_context(export_failures()) if script == 'export' else []
        try:
            if script == 'train':
                # a fresh Callbacks per run: train.main's default is one object per process, so a
                # second in-process run wrote its epochs into every earlier run's results.csv
                from yolov5.utils.callbacks import Callbacks
                callbacks = Callbacks()
                attn_start.add_callbacks(callbacks)  # the blend per batch, block strength per epoch
                module.main(module.parse_opt(), callbacks=callbacks)
            else:
                module.main()
            if failures:  # export.py logged them and went on
                raise UserError('; '.join(failures))
        except AssertionError as e:  # yolov5 checks user input with assert
            raise UserError(str(e).strip().splitlines()[0].removeprefix('ERROR: ') or 'invalid input') from None
        except KeyboardInterrupt:
            where = state.get('save_dir') or getattr(state.get('opt'), 'save_dir', None)
            raise KeyboardInterrupt(f'files so far are in {where}' if where else '') from None
    return 0


__all__ = ['SCRIPTS', 'run_script', 'check_weights']
