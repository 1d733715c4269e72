"""The ``parse_model`` wrapper: rows naming a registered block become a one-row entry class in tasks' globals.

Each such row is handed to ultralytics as ``[from, n, <entry>, ['ch', *args]]``: parse_model resolves
``'ch'`` to its own channel list (as it does any local name), gives the row ``c2 = ch[from]`` (its rule
for unknown modules) and calls the entry, which builds ``Block(ch[from], *args)``. Rows without a
registered block reach ultralytics untouched; ``self_check`` proves the mechanism on every install.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import itertools
import sys
import warnings

import torch
import torch.nn as nn

from ..errors import ModelConfigError, is_int
from ..config.parser import check_from
from ..config.surgery import SECTION, expand_attention
from . import TESTED, UltralyticsCompatError

SHIPPED = frozenset({'SE', 'CBAM', 'ECA', 'CoordAtt', 'SimAM'})  # ours even if ultralytics' tasks has the name
CHANNELS = 'ch'  # the parse_model local resolved from a row's string argument: its channel-count list
_ids = itertools.count()
_SELF_CHECK: dict[str, type] = {}  # the probe block, present only while _self_check_problem runs
_WARNED: set[str] = set()


def _tasks():
    return importlib.import_module('ultralytics.nn.tasks')


def ultralytics_version() -> str:
    module = sys.modules.get('ultralytics')
    version = getattr(module, '__version__', None)
    if version is None:
        from importlib.metadata import version as dist_version
        try:
            version = dist_version('ultralytics')
        except Exception:
            version = 'unknown'
    return str(version)


def _is_module_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _choose(name, namespace: dict) -> type | None:
    """The registered block a row's module name means here, or None (ultralytics resolves the name:
    its own module, or its KeyError for a name known nowhere)."""
    if not isinstance(name, str) or name.startswith(('nn.', 'torchvision.ops.')):
        return None
    if name in _SELF_CHECK:
        return _SELF_CHECK[name]
    if name not in SHIPPED and _is_module_class(namespace.get(name)):
        if name not in _WARNED and name in _registered_if_loaded():  # never loads the registry for stock rows
            _WARNED.add(name)
            warnings.warn(f"yolo-attn: block {name!r} is also an ultralytics module; ultralytics YAMLs get "
                          f"ultralytics' {name} (register your block under another name to use it there)",
                          UserWarning, stacklevel=5)
        return None
    return _registered().get(name)


def _registered() -> dict:
    from ..blocks.plugins import registered
    return registered()


def _registered_if_loaded() -> dict:
    from ..blocks.registry import BLOCKS
    return BLOCKS


def _where(i: int, section: str, k: int, row) -> str:
    return f'layer {i} ({section} row {k}: {row!r})'


def _check_row(row, i: int, where: str):
    f, n, name, args = row
    if isinstance(f, (list, tuple)):
        other = [x for x in f if is_int(x) and x != -1]
        hint = f'-1 for the previous layer, or {other[0]}' if other else '-1 for the previous layer'
        raise ModelConfigError(f"{where}: {name} takes one input, but 'from' lists {len(f)}; write one layer "
                               f"index ({hint}), or add a Concat row over {list(f)!r} and point {name} at it")
    check_from(f, i, where)  # the parser's one rule for 'from' indices
    if not is_int(n) or n < 1:
        raise ModelConfigError(f'{where}: number of repeats must be a positive integer, got {n!r}')
    if not isinstance(args, list):
        raise ModelConfigError(f'{where}: arguments must be a list such as [] or [16], got {args!r}')


def _check_cbam_args(name: str, block: type, args: tuple, where: str) -> None:
    """``[-1, 1, CBAM, [7]]`` is ultralytics' CBAM(c1, kernel_size=7); ours reads it as r=7: refuse."""
    if name == 'CBAM' and block.__module__ == 'yolo_attn.blocks.cbam' and len(args) == 1 \
            and is_int(args[0]) and args[0] in (3, 7):
        k = args[0]
        raise ModelConfigError(
            f"{where}: CBAM [{k}] is written for ultralytics' CBAM(c1, kernel_size={k}); yolo-attn's is "
            f'CBAM(c1, r=16, k=7) (r: channel reduction, k: spatial kernel 3 or 7), so [{k}] would mean '
            f'r={k}: write [16, {k}] for kernel size {k}, [] for the defaults, or [{k}, 7] for reduction {k}')


def _check_shape(module: nn.Module, c1: int, name: str, where: str) -> None:
    from ..blocks.registry import shape_problem
    problem = shape_problem(module, c1, name)
    if problem:
        raise ModelConfigError(f'{where}: {problem}')


def _builder(block: type, name: str, f: int, where: str):
    """``build(ch, args)``: one instance of ``block`` for the row (called n times for n repeats)."""
    checked = []

    def build(ch, args):
        if not isinstance(ch, list) or not -len(ch) <= f < len(ch) or not is_int(ch[f]):
            raise UltralyticsCompatError(
                f'ultralytics {ultralytics_version()}: {where}: parse_model no longer passes its channel list '
                f'for the argument {CHANNELS!r} (got {type(ch).__name__}); yolo-attn blocks cannot be built '
                f'(tested with ultralytics {TESTED})')
        c1 = ch[f]
        _check_cbam_args(name, block, args, where)
        try:
            inspect.signature(block).bind(c1, *args)
        except TypeError:
            params = list(inspect.signature(block).parameters)[1:]
            raise ModelConfigError(f'{where}: {name} takes ({", ".join(params)}) after the input channels, '
                                   f'got {list(args)!r}; rows carry no channel counts ({name}({c1}, ...) '
                                   f'here)') from None
        except ValueError:
            pass  # no introspectable signature: let the call itself decide
        try:
            module = block(c1, *args)
        except ModelConfigError:
            raise
        except (ValueError, TypeError, RuntimeError, AssertionError, IndexError, KeyError) as e:
            raise ModelConfigError(f"{where}: {name}({', '.join(map(repr, (c1, *args)))}): {e}") from None
        if not checked:
            _check_shape(module, c1, name, where)
            checked.append(True)
        return module

    return build


def _entry_class(block: type, build) -> type:
    """An nn.Module subclass (so ``ULTRALYTICS_SAFE_LOAD`` accepts it) whose call returns a real
    ``block`` instance; named like ``block`` so parse_model records the block's type string."""

    def __new__(cls, ch, *args):
        return build(ch, args)

    return type(block.__name__, (nn.Module,), {'__new__': __new__, '__module__': block.__module__,
                                               '__qualname__': block.__qualname__, '__doc__': block.__doc__})


def _rewrite(d: dict, namespace: dict):
    """A shallow copy of ``d`` with each registered-block row replaced, and the entries to inject;
    ``(d, {})`` when no row names a registered block."""
    sections = [(s, d.get(s)) for s in ('backbone', 'head')]
    if not all(isinstance(rows, list) for _, rows in sections):
        return d, {}  # not a model dict ultralytics can build: its own error
    entries, new = {}, {}
    token = next(_ids)
    i = 0
    for section, rows in sections:
        out = []
        for k, row in enumerate(rows):
            block = _choose(row[2], namespace) if isinstance(row, (list, tuple)) and len(row) == 4 else None
            if block is None:
                out.append(row)
            else:
                where = _where(i, section, k, row)
                _check_row(row, i, where)
                f, n, name, args = row
                key = f'<yolo-attn {name} layer {i} #{token}>'
                entries[key] = _entry_class(block, _builder(block, name, f, where))
                out.append([f, n, key, [CHANNELS, *args]])
            i += 1
        new[section] = out
    if not entries:
        return d, {}
    return {**d, **new}, entries


def make_wrapper(original, tasks):
    """``parse_model(d, *args, **kwargs)`` for ``tasks``: ours for registered rows, else ``original``."""

    @functools.wraps(original)
    def parse_model(d, *args, **kwargs):
        namespace = vars(tasks)
        if isinstance(d, dict) and SECTION in d:  # an attention: section becomes rows (config.surgery)
            d = expand_attention(d)
        d2, entries = _rewrite(d, namespace)
        if not entries:
            return original(d, *args, **kwargs)
        if parse_model._yolo_attn_broken:
            raise UltralyticsCompatError(parse_model._yolo_attn_broken)
        namespace.update(entries)
        try:
            return original(d2, *args, **kwargs)
        finally:
            for key in entries:
                namespace.pop(key, None)

    parse_model._yolo_attn = True
    parse_model._yolo_attn_broken = ''
    return parse_model


# ---- install, self-check ------------------------------------------------------------------------

class _Probe(nn.Module):
    """Records the channels and arguments it was built with; passes its input through."""

    def __init__(self, c1, *args):
        super().__init__()
        self.c1, self.args = c1, args

    def forward(self, x):
        return x


PROBE = 'YoloAttnSelfCheck'
PROBE_CFG = {  # width 0.25: a row's written numbers are never its input channels
    'nc': 1, 'scale': 't', 'scales': {'t': [1.0, 0.25, 1024]},
    'backbone': [[-1, 1, 'Conv', [64, 3, 2]],  # 0: 16 channels, stride 2
                 [-1, 1, PROBE, [5]],  # 1: c1 16, args (5,)
                 [-1, 1, 'Conv', [128, 3, 2]],  # 2: 32, stride 4
                 [1, 2, PROBE, []],  # 3: absolute from, 2 repeats: c1 16 each; out 16
                 [2, 1, 'Conv', [128, 1, 1]]],  # 4: 32, stride 4
    'head': [[3, 1, 'Conv', [96, 3, 2]],  # 5: input ch[3] = 16, out 24, stride 4
             [[4, 5], 1, 'Detect', ['nc']]],
}


def _self_check_problem(tasks) -> str:
    """'' if the wrapped ``tasks.parse_model`` builds the probe model right, else what broke."""
    for name in ('DetectionModel', 'Detect', 'Conv', 'parse_model'):
        if not hasattr(tasks, name):
            return f'ultralytics.nn.tasks has no {name}'
    cfg = copy.deepcopy(PROBE_CFG)
    detect = tasks.Detect
    legacy = vars(detect).get('legacy', None), 'legacy' in vars(detect)
    _SELF_CHECK[PROBE] = _Probe
    try:
        with torch.random.fork_rng(devices=[]):  # the caller's seeded RNG stream is left as it was
            model = tasks.DetectionModel(cfg, ch=3, verbose=False)
    except Exception as e:
        return f'building a probe model failed: {type(e).__name__}: {e}'.splitlines()[0]
    finally:
        _SELF_CHECK.pop(PROBE, None)
        if legacy[1]:
            detect.legacy = legacy[0]
        elif 'legacy' in vars(detect):
            del detect.legacy
    layers = list(model.model)
    if len(layers) != 7:
        return f'the probe model has {len(layers)} layers, expected 7'
    got = [layers[1], *layers[3]] if isinstance(layers[3], nn.Sequential) else [layers[1], layers[3]]
    if not all(isinstance(m, _Probe) for m in got) or len(got) != 3:
        return f'probe rows built {[type(m).__name__ for m in got]}, expected 3 probe blocks'
    if [(m.c1, m.args) for m in got] != [(16, (5,)), (16, ()), (16, ())]:
        return (f'probe blocks got (c1, args) {[(m.c1, m.args) for m in got]}, expected [(16, (5,)), (16, ()), '
                f'(16, ())] (input channels after the width multiple)')
    conv = layers[5].conv
    if conv.in_channels != 16:
        return f'the layer after a block got {conv.in_channels} input channels, expected 16'
    if (layers[1].f, layers[3].f, layers[1].i) != (-1, 1, 1):
        return 'parse_model no longer records from/index on the built block'
    if model.yaml['backbone'] != PROBE_CFG['backbone'] or model.yaml['head'] != PROBE_CFG['head']:
        return 'model.yaml no longer holds the rows as written'
    return ''


def _set_parse_model(tasks, new, old) -> None:
    tasks.parse_model = new
    nn_pkg = sys.modules.get('ultralytics.nn')
    if nn_pkg is not None and getattr(nn_pkg, 'parse_model', None) is old:
        nn_pkg.parse_model = new  # the re-export `from ultralytics.nn import parse_model`


def _signature_problem(fn) -> str:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return 'parse_model has no readable signature'
    if params[:2] != ['d', 'ch'] or 'verbose' not in params:
        return f'parse_model signature is ({", ".join(params)}), expected (d, ch, verbose)'
    return ''


def install(strict: bool = True) -> None:
    tasks = _tasks()
    current = tasks.parse_model
    if getattr(current, '_yolo_attn', False):
        if strict and current._yolo_attn_broken:
            raise UltralyticsCompatError(current._yolo_attn_broken)
        return
    wrapper = make_wrapper(current, tasks)
    _set_parse_model(tasks, wrapper, current)
    problem = _signature_problem(current) or _self_check_problem(tasks)
    if not problem:
        return
    message = (f'ultralytics {ultralytics_version()}: yolo-attn cannot register its blocks into model YAML '
               f'parsing: {problem}; yolo-attn is tested with ultralytics {TESTED} '
               f'(pip install ultralytics=={TESTED})')
    if strict:
        _set_parse_model(tasks, current, wrapper)
        raise UltralyticsCompatError(message)
    wrapper._yolo_attn_broken = message


def uninstall() -> None:
    tasks = _tasks()
    current = tasks.parse_model
    if getattr(current, '_yolo_attn', False):
        _set_parse_model(tasks, current.__wrapped__, current)
