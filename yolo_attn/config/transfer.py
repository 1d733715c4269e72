"""Pretrained transfer across inserted layers: map layers by YAML correspondence, not by index.

yolov5's ``intersect_dicts`` keeps tensors whose key and shape match, so an inserted row
(``model.12`` -> ``model.13``) silently drops every later layer's weights. Here the YAML rows are
aligned first (longest common subsequence) and checkpoint keys renamed before that intersection.
"""

from __future__ import annotations

import logging

from .files import model_rows

LOGGER = logging.getLogger('yolov5')


def layer_rows(d: dict) -> list:
    """The layers a model dict builds: its rows, with an ``attention:`` section expanded."""
    from .surgery import expand_attention
    return model_rows(expand_attention(d))


def _signature(row) -> str:
    """What a layer *is*, regardless of where it sits: module, repeats and arguments."""
    _, n, m, args = row
    return repr((m, n, args))


def layer_correspondence(src: dict, dst: dict) -> dict[int, int]:
    """``{source layer index: target layer index}`` for layers present in both model dicts;
    ``attention:`` sections expanded first (exact map when the target is the source plus one)."""
    if dst.get('attention') is not None and model_rows(dst) == layer_rows(src):
        from .surgery import expand_attention_with_map
        return expand_attention_with_map(dst)[1]
    a, b = [_signature(r) for r in layer_rows(src)], [_signature(r) for r in layer_rows(dst)]
    # longest common subsequence table, then walk it back
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    mapping, i, j = {}, 0, 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            mapping[i] = j
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return mapping


def remap_state_dict(state_dict: dict, mapping: dict[int, int]) -> dict:
    """Rename ``model.<i>.*`` keys to ``model.<mapping[i]>.*``; layers without a partner are dropped."""
    out = {}
    for key, value in state_dict.items():
        parts = key.split('.')
        if len(parts) > 2 and parts[0] == 'model' and parts[1].isdigit():
            if int(parts[1]) not in mapping:
                continue
            parts[1] = str(mapping[int(parts[1])])
        out['.'.join(parts)] = value
    return out


def intersect_by_correspondence(da: dict, db: dict, src_yaml: dict, dst_yaml: dict, exclude=()):
    """yolov5's ``intersect_dicts`` after renaming ``da``'s layers to their ``dst`` partners.

    Returns the kept tensors (keyed for ``db``) and the target layers with parameters that got none.
    """
    from yolov5.utils.general import intersect_dicts
    kept = intersect_dicts(remap_state_dict(da, layer_correspondence(src_yaml, dst_yaml)), db, exclude=exclude)
    layers_with_params = sorted({int(k.split('.')[1]) for k in db if k.startswith('model.')})
    covered = {int(k.split('.')[1]) for k in kept if k.startswith('model.')}
    fresh = [i for i in layers_with_params if i not in covered]
    return kept, fresh


def correspondence_intersect(src_yaml: dict, dst_yaml: dict):
    """A drop-in for train.py's ``intersect_dicts`` that knows both YAMLs and logs what it did."""
    rows = layer_rows(dst_yaml)

    def intersect_dicts(da, db, exclude=()):
        kept, fresh = intersect_by_correspondence(da, db, src_yaml, dst_yaml, exclude)
        names = ', '.join(f'{i} ({rows[i][2]})' for i in fresh) or 'none'
        LOGGER.info(f'transferred {len(kept)}/{len(db)} tensors by layer correspondence; '
                    f'target layers left fresh: {names}')
        return kept

    return intersect_dicts
