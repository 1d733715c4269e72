"""Edit a model YAML's layer rows as text, so comments, key order and formatting survive.

PyYAML drops comments and ruamel.yaml is not a dependency. For YOLOv5's layout (one
``[from, number, module, args]`` row per line), ``rewrite_rows`` locates each row with a small
scanner, checks it reads back as PyYAML parsed it, and edits ``from`` fields, index comments
(``# 17 (P3/8-small)``) and new rows in place; otherwise it returns ``None`` and the caller uses
``dump_model_yaml``. The caller checks the result reads back as the intended model dict.
"""

from __future__ import annotations

import re

import yaml

LAYER_KEYS = ('backbone', 'head')
_AFTER_ROW = re.compile(r'[ \t]*(,)?[ \t]*(\])?[ \t]*(#.*)?\r?$')
_INDEX_COMMENT = re.compile(r'#(\s*)(\d+)(?!\d)')


def flow(value) -> str:
    """One-line YAML flow text of a row or an args list: ``[-1, 1, CBAM, [16, 7]]``."""
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()


def _skip_string(text: str, i: int) -> int:
    """Index after the quoted scalar starting at ``text[i]`` (YAML single quotes double to escape)."""
    quote, i = text[i], i + 1
    while i < len(text):
        if quote == '"' and text[i] == '\\':
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1:i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise ValueError('unterminated string')


def _skip_blank(text: str, i: int) -> int:
    """Skip whitespace and ``#`` comments."""
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text[i] == '#':
            end = text.find('\n', i)
            i = len(text) if end < 0 else end
        else:
            return i
    return i


def row_spans(text: str, key: str) -> list[tuple[int, int]] | None:
    """``(start, end)`` of each row of the flow sequence under the top-level ``key:``; None if not that layout."""
    found = re.search(rf'^{key}:', text, re.M)
    if not found:
        return None
    i = _skip_blank(text, found.end())
    if i >= len(text) or text[i] != '[':
        return None
    spans, depth, start = [], 0, None
    while i < len(text):
        c = text[i]
        if c in '\'"':
            i = _skip_string(text, i)
            continue
        if c == '#' and (i == 0 or text[i - 1].isspace()):
            i = _skip_blank(text, i)
            continue
        if c == '[':
            depth += 1
            if depth == 2:
                start = i
        elif c == ']':
            depth -= 1
            if depth == 1:
                spans.append((start, i + 1))
            elif depth == 0:
                return spans
        elif depth == 1 and not (c.isspace() or c == ','):
            return None  # a row that is not a flow list
        i += 1
    return None


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    """Start of the line holding ``pos`` and the index of its newline (or the text's end)."""
    start = text.rfind('\n', 0, pos) + 1
    end = text.find('\n', pos)
    return start, len(text) if end < 0 else end


def _from_span(text: str, start: int) -> tuple[int, int]:
    """Span of the ``from`` field inside the row whose ``[`` is at ``start``."""
    i = start + 1
    while text[i].isspace():
        i += 1
    if text[i] == '[':
        return i, text.index(']', i) + 1
    j = i
    while text[j] not in ',]':
        j += 1
    return i, len(text[i:j].rstrip()) + i


def _from_text(f) -> str:
    return f'[{", ".join(map(str, f))}]' if isinstance(f, list) else str(f)


def rewrite_rows(text: str, old_rows: list, new_rows: list, mapping: dict[int, int], header: str) -> str | None:
    """``text`` with its rows edited into ``new_rows`` (see the module docstring); None if not possible."""
    try:
        spans = [s for key in LAYER_KEYS for s in (row_spans(text, key) or [None])]
    except ValueError:
        return None
    if None in spans or len(spans) != len(old_rows):
        return None
    edits = []  # (start, end, replacement), applied from the end of the text backwards
    old_of = {v: i for i, v in mapping.items()}
    added = {}  # old host index -> the new rows placed after it
    host = -1
    for j, row in enumerate(new_rows):
        if j in old_of:
            host = old_of[j]
        else:
            added.setdefault(host, []).append((j, row))
    for i, (start, end) in enumerate(spans):
        line_start, line_end = _line_bounds(text, start)
        before, rest = text[line_start:start], _AFTER_ROW.match(text, end, line_end)
        if text.find('\n', start, end) >= 0 or before.strip() not in ('', '[') or rest is None:
            return None  # not one row per line
        try:
            if yaml.safe_load(text[start:end]) != old_rows[i]:
                return None
        except yaml.YAMLError:
            return None
        new = new_rows[mapping[i]]
        if new[0] != old_rows[i][0]:
            a, b = _from_span(text, start)
            edits.append((a, b, _from_text(new[0])))
        comment = rest.group(3)
        if comment and mapping[i] != i:
            m = _INDEX_COMMENT.match(comment)
            if m and int(m.group(2)) == i:
                a = rest.start(3) + m.start(2)
                edits.append((a, a + len(m.group(2)), str(mapping[i])))
        if i in added:
            if rest.group(2):
                return None  # the sequence closes on the host's line
            if not rest.group(1):
                edits.append((end, end, ','))
            indent = ' ' * (start - line_start)
            lines = ''.join(f'\n{indent}{flow(r)},  # {j} {r[2]}, inserted' for j, r in added[i])
            edits.append((line_end, line_end, lines))
    for a, b, replacement in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        text = text[:a] + replacement + text[b:]
    return header + text


def dump_model_yaml(d: dict, header: str) -> str:
    """A model dict as YAML text: top-level keys in order, one row per line with its index."""
    lines = [header.rstrip('\n')] if header else []
    index = 0
    for key, value in d.items():
        if key in LAYER_KEYS and isinstance(value, list) and value:
            lines.append(f'{key}:')
            for k, row in enumerate(value):
                lines.append(f"{'  [' if k == 0 else '   '}{flow(row)},  # {index}")
                index += 1
            lines.append('  ]')
        elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            lines.append(f'{key}:')  # anchors: one flow list per line
            lines.extend(f'  - {flow(v)}' for v in value)
        elif isinstance(value, list):
            lines.append(f'{key}: {flow(value)}')
        else:
            lines.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False,
                                        width=1 << 30).rstrip('\n').removesuffix('\n...'))
    return '\n'.join(lines) + '\n'
