"""``train --resume``: everything read from the run folder is checked, and the run writes only there.

yolov5 rebuilds its command line from the run's ``opt.yaml`` (or the checkpoint's ``opt``), so an
edited folder could redirect ``save_dir``, set ``evolve:`` or hold wrong types. ``check_resume``
accepts only yolov5's train options with values of their default's type, a valid data YAML and a
complete numeric hyp; ``run_dir_of`` is the folder the run is confined to.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..config.yamlfile import read_yaml
from ..errors import UserError, is_int

REFUSED = {'evolve': 'hyperparameter evolution', 'bucket': 'cloud storage (gsutil)'}


def run_dir_of(last: Path) -> Path:
    """``runs/train/expN`` for ``runs/train/expN/weights/last.pt``; anything else is refused."""
    if last.parent.name != 'weights':
        raise UserError(f'--resume {last}: expected a run\'s checkpoint, <run folder>/weights/last.pt '
                        f'(the run folder holds opt.yaml and is the only place a resumed run writes)')
    return last.resolve().parent.parent


def default_hyp() -> dict:
    import yolov5
    return read_yaml(Path(yolov5.__file__).parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml')


def _is_number(v) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


def check_hyp(hyp, where) -> dict:
    """A hyp mapping with every key train.py reads, each a finite number >= 0 (lr0 > 0: torch's
    optimizers refuse a negative learning rate, momentum or weight decay with a traceback)."""
    if not isinstance(hyp, dict):
        raise UserError(f'{where}: hyperparameters must be a mapping such as lr0: 0.01 (see yolov5 data/hyps/)')
    missing = [k for k in default_hyp() if k not in hyp]
    if missing:
        raise UserError(f"{where}: missing hyperparameters {', '.join(missing)} (copy yolov5's "
                        f"data/hyps/hyp.scratch-low.yaml and edit it)")
    bad = [f'{k}: {v!r}' for k, v in hyp.items() if not _is_number(v) or v < 0 or (k == 'lr0' and v == 0)]
    if bad:
        raise UserError(f"{where}: hyperparameters must be finite numbers >= 0 (lr0 > 0), got {', '.join(bad[:3])}")
    return hyp


def _same_kind(value, default) -> bool:
    if default is None or value is None:
        return value is None or isinstance(value, (str, int, float, bool, list))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return _is_number(value)
    if isinstance(default, (str, Path)):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)):
        return isinstance(value, list)
    return False


def check_resume(d, where, defaults: dict, check_data) -> dict:
    """The validated options dict of a run being resumed (``where`` names opt.yaml or the checkpoint)."""
    if not isinstance(d, dict) or not all(isinstance(k, str) for k in d):
        raise UserError(f'{where}: not a mapping of train options; cannot resume from it')
    unknown = sorted(k for k in d if k not in defaults and k != 'save_dir')
    if unknown:
        raise UserError(f"{where}: not yolov5 7.0 train options: {', '.join(unknown[:5])}; cannot resume from it")
    for key, what in REFUSED.items():
        if d.get(key):
            raise UserError(f'{where}: {key}: {d[key]!r} ({what}) is not supported by yolo-attn train; '
                            f'remove it to resume')
    for key, value in d.items():
        if key not in ('hyp', 'save_dir') and not _same_kind(value, defaults[key]):
            raise UserError(f'{where}: {key}: {value!r} is not a valid value (expected the type of its default, '
                            f'{defaults[key]!r})')
    if isinstance(d.get('hyp'), dict):
        check_hyp(d['hyp'], f'{where} (hyp:)')
    elif isinstance(d.get('hyp'), str) and Path(d['hyp']).is_file():
        check_hyp(read_yaml(Path(d['hyp'])), d['hyp'])
    else:
        raise UserError(f'{where}: hyp: must be a mapping or an existing hyp YAML, got {d.get("hyp")!r}')
    if not isinstance(d.get('data'), str) or not d['data']:
        raise UserError(f'{where}: data: must name the data YAML the run trained on')
    check_data(d['data'])
    return d
