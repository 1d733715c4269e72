"""A YOLOv5 ``parse_model`` that knows registered blocks and never ``eval``s YAML text.

Builds the same network as upstream ``yolov5.models.yolo.parse_model`` for every stock YAML
(the stock-equivalence test), but module names resolve through the block registry, yolov5's own
modules, then ``nn.<Name>``; string args go through a small AST interpreter (literals, ``nc``,
``anchors``, arithmetic, ``nn.<Module>(literals)``; a bare unknown name stays a string, anything
else is a ``ModelConfigError``); blocks get ``c1`` first and must keep their input's shape.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import operator

import torch.nn as nn

from ..errors import ModelConfigError, is_int, is_number
from .limits import check_header, check_layer_size, check_repeats
from ..blocks.plugins import registered
from ..blocks.registry import shape_problem, yolov5_modules


def _nn_module(name: str):
    cls = getattr(nn, name, None) if name.isidentifier() else None
    return cls if isinstance(cls, type) and issubclass(cls, nn.Module) else None


def resolve_module(name, namespace: dict, where: str) -> type:
    """Registered block, YOLOv5 module or ``nn.<Module>`` for a YAML module name; else a clear error."""
    if not isinstance(name, str):
        raise ModelConfigError(f'{where}: module must be a name, got {name!r}')
    if name in registered():
        return registered()[name]
    known = yolov5_modules(namespace)
    if name in known:
        return known[name]
    if name.startswith('nn.') and _nn_module(name[3:]):
        return _nn_module(name[3:])
    choices = list(registered()) + list(known) + [f'nn.{k}' for k in dir(nn) if _nn_module(k)]
    close = difflib.get_close_matches(name, choices, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else '; `yolo-attn blocks` lists the attention blocks'
    raise ModelConfigError(f'{where}: unknown module {name!r}{hint}')


class _Unresolved(Exception):
    """A bare name outside the allowlist (kept as a string, as upstream does on NameError)."""


_CONSTANTS = {'None': None, 'True': True, 'False': False}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
               ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}


def _evaluate(node, names: dict):
    """Interpret one allowlisted expression node; raise ValueError for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise _Unresolved(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_evaluate(e, names) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand, names)
        if is_number(value):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        a, b = _evaluate(node.left, names), _evaluate(node.right, names)
        if is_number(a) and is_number(b):
            return _ARITHMETIC[type(node.op)](a, b)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == 'nn':
        cls = _nn_module(node.attr)
        if cls is not None:
            return cls
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        cls = _evaluate(node.func, names)
        args = [_evaluate(a, {}) for a in node.args]
        kwargs = {k.arg: _evaluate(k.value, {}) for k in node.keywords if k.arg}
        if len(kwargs) == len(node.keywords):
            return cls(*args, **kwargs)
    raise ValueError(ast.unparse(node))


def evaluate_arg(value, names: dict, where: str):
    """The value of one YAML argument: non-strings as they are, strings through the allowlist."""
    if not isinstance(value, str):
        return value
    try:
        tree = ast.parse(value.strip(), mode='eval')
    except SyntaxError:
        return value  # not an expression: a plain string argument
    try:
        return _evaluate(tree.body, names)
    except _Unresolved as e:
        if isinstance(tree.body, ast.Name):
            return value  # bare word such as 'nearest'
        raise ModelConfigError(f"{where}: unknown name {e} in {value!r}; allowed names: "
                               f"{', '.join(sorted(names) + list(_CONSTANTS))}, nn.<Module>") from None
    except (ValueError, TypeError) as e:
        raise ModelConfigError(f'{where}: refusing to evaluate {value!r} ({e}); arguments may only be literals, '
                               f"{', '.join(sorted(names))}, or nn.<Module>(literals)") from None


def check_from(f, i: int, where: str):
    refs = f if isinstance(f, list) else [f]
    if not refs or not all(is_int(x) for x in refs):
        raise ModelConfigError(f"{where}: 'from' must be an index or a list of indices, got {f!r}")
    for x in refs:
        if (x != -1) if i == 0 else not -i <= x < i:
            valid = '-1 (the input)' if i == 0 else f'0..{i - 1} or -1..-{i}'
            raise ModelConfigError(f"{where}: 'from' index {x} is out of range (valid: {valid})")


def _check_block(m, module, c1: int, where: str):
    """A registered block must keep its input's shape (the contract the parser relies on)."""
    problem = shape_problem(module, c1, m.__name__)
    if problem:
        raise ModelConfigError(f'{where}: {problem}')


def make_parse_model(namespace: dict, prepare=None):
    """A ``parse_model(d, ch)`` for the ``models.yolo`` module whose globals are ``namespace``.

    ``prepare(d) -> d``, if given, rewrites the model dict first (``install`` passes
    ``surgery.expand_attention``, which turns an ``attention:`` section into rows)."""
    g = namespace
    make_divisible, LOGGER, Conv = g['make_divisible'], g['LOGGER'], g['Conv']
    out_first = {g[k] for k in ('Conv', 'GhostConv', 'Bottleneck', 'GhostBottleneck', 'SPP', 'SPPF', 'DWConv',
                                'MixConv2d', 'Focus', 'CrossConv', 'BottleneckCSP', 'C3', 'C3TR', 'C3SPP',
                                'C3Ghost', 'DWConvTranspose2d', 'C3x')} | {nn.ConvTranspose2d}
    repeats_inside = {g[k] for k in ('BottleneckCSP', 'C3', 'C3TR', 'C3Ghost', 'C3x')}
    heads = (g['Detect'], g['Segment'])

    def parse_model(d, ch):
        """Build ``nn.Sequential`` and the save list from a model dict (drop-in for upstream's)."""
        if prepare is not None:
            d = prepare(d)
        for key in ('anchors', 'nc', 'depth_multiple', 'width_multiple', 'backbone', 'head'):
            if key not in d:
                raise ModelConfigError(f'model YAML has no {key!r} key')
        anchors, nc, gd, gw = d['anchors'], d['nc'], d['depth_multiple'], d['width_multiple']
        check_header(nc, gd, gw, anchors)  # config.limits: bounded before anything is built
        rows = (d['backbone'] or []) + (d['head'] or [])
        na = (len(anchors[0]) // 2) if isinstance(anchors, list) else anchors
        no = na * (nc + 5)
        names = {'nc': nc, 'anchors': anchors, 'na': na, 'no': no}
        LOGGER.info(f"\n{'':>3}{'from':>18}{'n':>3}{'params':>10}  {'module':<40}{'arguments':<30}")
        default_act = Conv.default_act
        try:
            if d.get('activation'):
                act = evaluate_arg(d['activation'], {}, 'activation')
                if not isinstance(act, nn.Module):
                    raise ModelConfigError(f"activation: expected nn.<Module>(...), got {d['activation']!r}")
                Conv.default_act = act  # for this model's Conv layers only (restored below)
            layers, save = [], []
            for i, row in enumerate(rows):
                if not (isinstance(row, list) and len(row) == 4 and isinstance(row[3], list)):
                    raise ModelConfigError(f'layer {i}: expected [from, number, module, [args]], got {row!r}')
                f, n, name, raw_args = row
                where = f'layer {i} ({name})'
                check_from(f, i, where)
                if not is_int(n) or n < 1:
                    raise ModelConfigError(f'{where}: number of repeats must be a positive integer, got {n!r}')
                check_repeats(n, gd, where)
                m = resolve_module(name, g, where)
                args = [evaluate_arg(a, names, where) for a in raw_args]
                n = n_ = max(round(n * gd), 1) if n > 1 else n
                args, c2, n = _layer_args(m, args, f, n, ch, gw, no, where)
                module = _construct(m, args, n, where)
                if m in registered().values():
                    _check_block(m, module if n == 1 else module[0], ch[f], where)
                t = str(m)[8:-2].replace('__main__.', '')
                module.i, module.f, module.type, module.np = i, f, t, sum(x.numel() for x in module.parameters())
                LOGGER.info(f'{i:>3}{str(f):>18}{n_:>3}{module.np:10.0f}  {t:<40}{str(args):<30}')
                save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
                layers.append(module)
                if i == 0:
                    ch = []
                ch.append(c2)
        finally:
            Conv.default_act = default_act
        return nn.Sequential(*layers), sorted(save)

    def _layer_args(m, args, f, n, ch, gw, no, where):
        """Constructor args, output channels and remaining repeats (YOLOv5's channel rules + blocks)."""
        if isinstance(f, list) and m not in heads and m is not g['Concat']:
            raise ModelConfigError(f"{where}: takes one input, 'from' must be a single index, got {f!r}")
        if m in registered().values():
            return [ch[f], *args], ch[f], n
        if m in out_first:
            if not args or not is_number(args[0]):
                raise ModelConfigError(f'{where}: first argument must be the output channel count, got {args!r}')
            c2 = args[0] if args[0] == no else make_divisible(args[0] * gw, 8)
            args = [ch[f], c2, *args[1:]]
            if m in repeats_inside:
                args.insert(2, n)
                n = 1
            return args, c2, n
        if m is nn.BatchNorm2d:
            return [ch[f]], ch[f], n
        if m is g['Concat']:
            return args, sum(ch[x] for x in (f if isinstance(f, list) else [f])), n
        if m in heads:
            if len(args) < 2:
                raise ModelConfigError(f'{where}: expects [nc, anchors, ...], got {args!r}')
            refs = f if isinstance(f, list) else [f]
            args.append([ch[x] for x in refs])
            if isinstance(args[1], int):
                args[1] = [list(range(args[1] * 2))] * len(refs)
            if m is g['Segment']:
                args[3] = make_divisible(args[3] * gw, 8)
            return args, ch[refs[-1]], n
        if m is g['Contract']:
            return args, ch[f] * args[0] ** 2, n
        if m is g['Expand']:
            return args, ch[f] // args[0] ** 2, n
        return args, ch[f], n

    return parse_model


def _construct(m, args, n, where):
    """``m(*args)``, repeated ``n`` times in a Sequential; errors become one line naming the layer."""
    if m in registered().values():
        try:
            inspect.signature(m).bind(*args)
        except TypeError:
            params = list(inspect.signature(m).parameters)[1:]
            raise ModelConfigError(f'{where}: takes ({", ".join(params)}) after the input channels, '
                                   f'got {args[1:]!r}; rows carry no channel counts here') from None
    check_layer_size(lambda: nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args), where)
    try:
        return nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
    except ModelConfigError:
        raise
    except (ValueError, TypeError, RuntimeError, AssertionError, IndexError, KeyError) as e:
        raise ModelConfigError(f'{where}: {e}') from None
