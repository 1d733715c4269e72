"""YAML surgery: insert attention blocks into a model YAML (yolov5 or ultralytics) and rewire every reference.

One rule: **a block is inserted after its host and every reference to the host now reads the
block**; ``-1`` stays ``-1`` where it still means the previous row, ``Detect`` reads what it read
before. Front ends: ``insert_blocks`` (dict and ``{old: new}`` index map), ``expand_attention`` (an
``attention:`` section); ``insert_file`` writes ``yolo-attn insert``'s file. Only
registered, shape-keeping blocks (``registry``). See docs/surgery.md.
"""

from __future__ import annotations

import copy
import difflib

from ..errors import ModelConfigError, is_int
from ..blocks.plugins import registered
from ..blocks.registry import yolov5_modules
from .files import model_rows as _rows
from .parser import check_from

SECTION = 'attention'
HEADS = ('Detect', 'Segment')
ENTRY_KEYS = ('block', 'after', 'args')


def _at(where: str) -> str:
    return f'{where}: ' if where else ''


def check_block_name(block, where: str = '') -> None:
    """A registered block name, else one line with close matches (or why a YOLOv5 layer is refused)."""
    prefix = _at(where)
    if isinstance(block, str) and block in registered():
        return
    if isinstance(block, str) and block in yolov5_modules():
        raise ModelConfigError(f'{prefix}{block} is a YOLOv5 layer, not an attention block; only registered '
                               f"blocks (shape-preserving) can be inserted: {', '.join(sorted(registered()))}")
    close = difflib.get_close_matches(str(block), list(registered()), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"registered: {', '.join(sorted(registered()))}"
    raise ModelConfigError(f'{prefix}unknown block {block!r}; {hint} (`yolo-attn blocks` lists them)')


def _check_rows(rows: list) -> None:
    """Every row has the 4-field form and valid ``from`` indices (the rewiring relies on them)."""
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[3], list)):
            raise ModelConfigError(f'layer {i}: expected [from, number, module, [args]], got {row!r}')
        check_from(row[0], i, f'layer {i} ({row[2]})')


def _check_host(h, rows: list, where: str) -> None:
    last = len(rows) - 1
    while last >= 0 and rows[last][2] in HEADS:
        last -= 1
    valid = f'a block can follow layers 0..{last}'
    if not is_int(h):
        raise ModelConfigError(f'{_at(where)}after {h!r}: expected a layer index ({valid})')
    if not 0 <= h < len(rows):
        raise ModelConfigError(f'{_at(where)}after {h}: no such layer; the model has layers 0..{len(rows) - 1} ({valid})')
    if rows[h][2] in HEADS:
        raise ModelConfigError(f"{_at(where)}after {h}: layer {h} is {rows[h][2]}, the model's output, not a feature "
                               f'map; {valid}')


def _plan(rows: list, entries: list) -> list[tuple[int, str, list]]:
    """``(host, block, args)`` insertions from ``(block, after, args, where)`` entries, validated."""
    plan = []
    for block, after, args, where in entries:
        check_block_name(block, where)
        hosts = after if isinstance(after, list) else [after]
        if not hosts:
            raise ModelConfigError(f'{_at(where)}after: no layer index given')
        for h in hosts:
            _check_host(h, rows, where)
        twice = sorted({h for h in hosts if hosts.count(h) > 1})
        if twice:
            raise ModelConfigError(f'{_at(where)}after lists layer {twice[0]} twice; to stack two blocks on one '
                                   f'layer, use two attention: entries (or insert twice)')
        if not isinstance(args, list):
            raise ModelConfigError(f'{_at(where)}args must be a list (the YAML args after the input channels), '
                                   f'got {args!r}')
        plan.extend((h, block, list(args)) for h in hosts)
    return plan


def _apply(d: dict, plan: list) -> tuple[dict, dict[int, int]]:
    """The model dict with the planned rows inserted and every reference rewired."""
    rows, nb = _rows(d), len(d.get('backbone') or [])
    _check_rows(rows)
    added = {i: [] for i in range(len(rows))}
    for h, block, args in plan:
        added[h].append([-1, 1, block, args])
    new_index, feature, j = [], [], 0
    for i in range(len(rows)):
        new_index.append(j)
        j += 1 + len(added[i])
        feature.append(j - 1)  # the row that now carries old row i's output: the last block after it

    def rewire(x, i):
        if i == 0 and x == -1:
            return x  # the input image
        return feature[x] if x >= 0 else feature[i + x] - new_index[i]

    backbone, head = [], []
    for i, (f, n, m, args) in enumerate(rows):
        f = [rewire(x, i) for x in f] if isinstance(f, list) else rewire(f, i)
        (backbone if i < nb else head).extend([[f, n, m, copy.deepcopy(args)]] + added[i])
    out = {k: v for k, v in d.items() if k != SECTION}
    out['backbone'], out['head'] = backbone, head
    return out, dict(enumerate(new_index))


def _section_entries(d: dict) -> list:
    """The ``attention:`` section as ``(block, after, args, where)`` entries (checked for form)."""
    section = d.get(SECTION)
    if section is None:
        return []
    if isinstance(section, dict):
        section = [section]
    if not isinstance(section, list):
        raise ModelConfigError(f'{SECTION}: expected a list of {{block, after, args}} entries, got {section!r}')
    entries = []
    for k, e in enumerate(section):
        where = f'{SECTION}[{k}]'
        if not isinstance(e, dict):
            raise ModelConfigError(f'{where}: expected a mapping {{block: NAME, after: [indices], args: [...]}}, '
                                   f'got {e!r}')
        unknown = [key for key in e if key not in ENTRY_KEYS]
        if unknown:
            raise ModelConfigError(f"{where}: unknown key {unknown[0]!r}; an entry has {', '.join(ENTRY_KEYS)}")
        for key in ('block', 'after'):
            if key not in e:
                raise ModelConfigError(f'{where}: missing {key!r} (an entry is {{block: NAME, after: [indices], '
                                       f'args: [...]}})')
        entries.append((e['block'], e['after'], [] if e.get('args') is None else e['args'], where))
    return entries


def expand_attention_with_map(d: dict) -> tuple[dict, dict[int, int]]:
    """``expand_attention`` and the correspondence ``{row as written: row after expansion}``."""
    if SECTION not in d:
        return d, {i: i for i in range(len(_rows(d)))}
    rows = _rows(d)
    return _apply(d, _plan(rows, _section_entries(d)))


def expand_attention(d: dict) -> dict:
    """Expand a model dict's ``attention:`` section into rows; ``d`` itself when it has none.

    ``after`` names rows of the YAML as written; entries on one row stack in order. Errors (unknown
    block, index out of range or after Detect) are one ``ModelConfigError`` line naming the entry.
    """
    return expand_attention_with_map(d)[0]


def insert_blocks(d: dict, block: str, after: list[int], args: list | None = None) -> tuple[dict, dict[int, int]]:
    """Insert ``block(c1, *args)`` after each row in ``after`` (rows of ``d`` as written); the new
    dict and ``{old: new}`` index map. An ``attention:`` section is expanded first; ``d`` is not modified.
    """
    rows = _rows(d)
    entries = _section_entries(d) + [(block, list(after) if isinstance(after, (list, tuple)) else after,
                                      [] if args is None else args, '')]
    return _apply(d, _plan(rows, entries))


def inserted_rows(mapping: dict[int, int], hosts: list[int], n_new: int) -> list[int]:
    """New index of the block placed last after each host (what ``insert_blocks`` put there)."""
    return [mapping.get(h + 1, n_new) - 1 for h in hosts]
