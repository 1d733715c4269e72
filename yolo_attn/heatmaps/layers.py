"""Target layers by role, resolved per model from its structure (``--layers backbone``).

Roles: ``backbone`` (backbone stage outputs the neck reads, plus SPP/SPPF; an attention block stands
for the layer it follows), ``neck`` (lateral outputs, Detect's inputs excluded), ``detect`` (Detect's
inputs), ``attention`` (registered blocks), ``level`` (per detection: the backbone stages at its
stride and the next finer one). They combine with ``+``/``,`` and mix with indices. Read from the
YAML's ``backbone:`` section (``attention:`` expanded), the ``f`` wiring, and strides from one
forward of a zero image. Errors are ``LayerSpecError`` (a ``ValueError``). See docs/heatmaps.md.
"""

from __future__ import annotations

import difflib
import weakref
from dataclasses import dataclass, field

from ..errors import OptionError

ROLES = ('backbone', 'neck', 'detect', 'attention', 'level')
DEFAULT = 'level'  # chosen by measurement: benchmarks/heatmap_layers_study.py, docs/heatmaps.md "Which layers, and why"
SPP_TYPES = ('SPP', 'SPPF')
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


LAYERS_HELP = (f"layer indices and/or roles ({', '.join(ROLES)}), combined with + or , (e.g. backbone+detect, "
               f"4,6,9); resolved per model, printed and stored in the manifest; default {DEFAULT}")


class LayerSpecError(OptionError):
    """A ``layers`` value that names no layer of this model; ``detail`` follows the option's name."""

    def __init__(self, detail: str):
        super().__init__('layers', detail)


def normalise(value):
    """A ``--layers`` value as given (indices and roles are resolved per model by ``resolve``); None
    (the default, ``DEFAULT``) for an empty one."""
    if isinstance(value, str):
        return value.strip() or None
    return value or None


@dataclass
class Structure:
    """What the roles are read from: each layer's inputs and output stride, the backbone's end."""

    reads: list  # reads[i]: absolute indices layer i takes as input
    strides: list  # strides[i]: input pixels per output cell (None for Detect)
    backbone_end: int  # first layer of the neck
    detect: int  # index of Detect / Segment
    attention: list  # indices of registered attention blocks
    types: list = field(default_factory=list)  # class names

    def host(self, i: int) -> int:
        """The layer an attention block decorates (itself for any other layer)."""
        while i in self.attention and self.reads[i]:
            i = self.reads[i][0]
        return i


def _reads(model) -> list:
    out = []
    for i, m in enumerate(model.model):
        f = m.f if isinstance(m.f, (list, tuple)) else [m.f]
        out.append([i + j if j < 0 else j for j in f] if i else [])
    return out


def _strides(model, reads) -> list:
    """Output stride of every layer, from hooks on one eval forward of a zero image."""
    import torch  # here: the CLI reads ROLES and LAYERS_HELP from this module without torch
    size = 2 * max(int(model.stride.max()), 128)
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: shapes.__setitem__(
        i, out.shape[-1] if isinstance(out, torch.Tensor) and out.dim() == 4 else None))
        for i, m in enumerate(model.model)]
    p = next(model.parameters())
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size, dtype=p.dtype, device=p.device))
    finally:
        model.train(training)
        for h in hooks:
            h.remove()
    return [size // shapes[i] if shapes.get(i) else None for i in range(len(reads))]


def _backbone_end(model) -> int:
    """The index of the first neck layer: the rows of the model YAML's ``backbone:`` section, with
    an ``attention:`` section expanded as the parser expands it."""
    d = getattr(model, 'yaml', None)
    if not isinstance(d, dict) or not isinstance(d.get('backbone'), list):
        raise LayerSpecError('(a role): the model carries no YAML with a backbone: section; give layer indices')
    from ..config.surgery import expand_attention_with_map
    n = len(d['backbone'])
    mapping = expand_attention_with_map(d)[1]
    return mapping.get(n, len(model.model) - 1)


def structure(model) -> Structure:
    """The model's ``Structure`` (cached per model object)."""
    if model in _CACHE:
        return _CACHE[model]
    from ..blocks.plugins import registered
    blocks = tuple(registered().values())
    reads = _reads(model)
    s = Structure(reads, _strides(model, reads), _backbone_end(model), len(model.model) - 1,
                  [i for i, m in enumerate(model.model) if isinstance(m, blocks)],
                  [type(m).__name__ for m in model.model])
    _CACHE[model] = s
    return s


def roles(model) -> dict:
    """``{role: sorted layer indices}`` for the fixed roles of this model (``level`` is per detection)."""
    s = structure(model)
    end, det = s.backbone_end, s.detect
    readers = {}  # layer -> the layers that read it
    for i, r in enumerate(s.reads):
        for j in r:
            readers.setdefault(j, []).append(i)
    backbone = {s.host(j) for j in range(end) if any(i >= end for i in readers.get(j, []))}
    backbone |= {i for i in range(end) if s.types[i] in SPP_TYPES}
    detect = list(s.reads[det])
    neck = {s.host(j) for j in range(end, det) if any(i not in (j + 1, det) for i in readers.get(j, []))}
    neck -= set(detect)
    return {'backbone': sorted(backbone), 'neck': sorted(neck), 'detect': detect, 'attention': list(s.attention)}


def level_layers(model) -> list:
    """Per head level (P3, P4, ...): the backbone stage outputs at the head's stride and the next
    finer one (the layers of the ``level`` role)."""
    s = structure(model)
    stages = roles(model)['backbone']
    by_stride = {}
    for j in stages:  # the last stage output at each stride (SPPF over the C3 before it)
        by_stride[s.strides[j]] = j
    ordered = sorted(by_stride)
    out = []
    for level, d in enumerate(s.reads[s.detect]):
        stride = s.strides[d]
        finer = [t for t in ordered if t < stride]
        chosen = ([by_stride[stride]] if stride in by_stride else []) + ([by_stride[finer[-1]]] if finer else [])
        if not chosen:
            raise LayerSpecError(f'level: no backbone stage at or below stride {stride} (head P{level + 3})')
        out.append(sorted(chosen))
    return out


def tokens(spec) -> list:
    """``'backbone+detect'``, ``'4,6,9'``, ``[4, 'neck']``, ``17`` -> a list of role names and ints."""
    items = [spec] if isinstance(spec, (str, int)) else list(spec)
    out = []
    for item in items:
        if isinstance(item, bool):
            raise LayerSpecError(f'{item!r}: expected layer indices or roles')
        if isinstance(item, int):
            out.append(item)
            continue
        for t in str(item).replace('+', ',').split(','):
            t = t.strip()
            if not t:
                continue
            if t.lstrip('-').isdigit():
                out.append(int(t))
            elif t.lower() in ROLES:
                out.append(t.lower())
            else:
                close = difflib.get_close_matches(t.lower(), ROLES, n=1)
                hint = f' (did you mean {close[0]}?)' if close else ''
                raise LayerSpecError(f'{spec!r}: unknown role {t!r}{hint}; use layer indices or roles '
                                     f"{', '.join(ROLES)}, combined with + (e.g. backbone+detect)")
    if not out:
        raise LayerSpecError(f'{spec!r}: no layer given')
    return out


@dataclass
class Plan:
    """The resolved ``--layers``: ``layers`` (sorted indices the forward keeps) and, per head level,
    the subset a detection of that level uses (``per_level``; the same full list for every level
    unless the ``level`` role is given)."""

    spec: str
    layers: list
    per_level: list

    @property
    def uniform(self) -> bool:
        """Every head level uses all the layers."""
        return all(p == self.layers for p in self.per_level)

    def for_level(self, level: int) -> list:
        return self.per_level[level]

    def describe(self) -> str:
        if self.uniform:
            return f"{self.spec} = {','.join(map(str, self.layers))}"
        parts = '; '.join(f"P{k + 3}: {','.join(map(str, p))}" for k, p in enumerate(self.per_level))
        return f'{self.spec} = {parts}'

    def to_json(self) -> dict:
        return {'spec': self.spec, 'layers': self.layers, 'per_level': {f'P{k + 3}': p
                                                                       for k, p in enumerate(self.per_level)}}


def resolve(model, spec=None) -> Plan:
    """``spec`` (None: ``DEFAULT``; a string, an int or a list of roles/indices; or a ``Plan``, returned
    as it is) -> this model's ``Plan``."""
    if isinstance(spec, Plan):
        return spec
    spec = DEFAULT if spec is None or (isinstance(spec, (list, tuple)) and not spec) else spec
    items = tokens(spec)
    last = len(model.model) - 1
    bad = [i for i in items if isinstance(i, int) and not 0 <= i < last]
    if bad:
        raise LayerSpecError(f'{bad}: layer indices must be 0..{last - 1} (the Detect layer is {last})')
    nheads = len(structure(model).reads[last]) if any(isinstance(i, str) for i in items) else \
        len(model.model[-1].f) if isinstance(model.model[-1].f, (list, tuple)) else 1
    fixed, level = set(), 'level' in items
    table = roles(model) if any(isinstance(i, str) and i != 'level' for i in items) else {}
    for item in items:
        if isinstance(item, int):
            fixed.add(item)
        elif item != 'level':
            if not table[item]:
                raise LayerSpecError(f'{item}: this model has no {item} layers'
                                     + (' (no registered attention block)' if item == 'attention' else ''))
            fixed.update(table[item])
    per_level = [sorted(fixed | set(p)) for p in level_layers(model)] if level else [sorted(fixed)] * nheads
    union = sorted(set().union(*map(set, per_level)))
    text = spec if isinstance(spec, str) else ','.join(map(str, spec if isinstance(spec, (list, tuple)) else [spec]))
    return Plan(str(text), union, per_level)
