"""Every YAML we or yolov5 read (model, data, hyp, a run's opt.yaml): data only, bounded, one-line errors.

``yaml.SafeLoader`` (no ``!!python/...`` tags), duplicate keys refused, files over ``MAX_BYTES``
refused before parsing, and the node graph counted with aliases expanded before it becomes Python
objects (over ``MAX_NODES``, a recursive alias or too deep: refused, so "billion laughs" files fail
fast). ``safe_load`` has ``yaml.safe_load``'s signature and is handed to yolov5 (``untrusted``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UserError

MAX_BYTES = 16 * 2 ** 20  # the largest stock yolov5 YAML is a few KB; a data YAML listing classes, < 1 MB
MAX_NODES = 1_000_000  # nodes after alias expansion (ImageNet's 1000 names are ~2000)


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return ()


def _check_expansion(root, where, error) -> None:
    """Expanded size of the node graph (iterative, memoised by node identity); refuse bombs and cycles."""
    size, open_nodes, stack = {}, set(), [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_NODES:
                raise error(f'{where}: refused: its aliases expand to more than {MAX_NODES:,} nodes '
                            f'(a YAML "billion laughs"); write the data out without nested aliases')
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise error(f'{where}: refused: a recursive alias (a node that contains itself)')
        _check_unique_keys(node, where, error)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _check_unique_keys(node, where, error) -> None:
    """A mapping that names a key twice: PyYAML keeps the last value silently (``val:`` written
    twice in a data YAML trains on one split and validates on whichever came last)."""
    if not isinstance(node, yaml.MappingNode):
        return
    seen = set()
    for k, _ in node.value:
        if isinstance(k, yaml.ScalarNode) and k.tag != 'tag:yaml.org,2002:merge':
            if (k.tag, k.value) in seen:
                raise error(f'{where} (line {k.start_mark.line + 1}): key {k.value!r} is given twice in one mapping; '
                            f'keep the one you mean')
            seen.add((k.tag, k.value))


def _malformed(where, e: yaml.YAMLError, error):
    mark = getattr(e, 'problem_mark', None)
    at = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
    problem = str(getattr(e, 'problem', None) or e).strip().splitlines()[0]  # a ReaderError adds a line
    if isinstance(e, yaml.constructor.ConstructorError):
        return error(f'{where}{at}: refused: {problem} (only plain data is read; tags that build Python '
                     f'objects never run)')
    return error(f'{where}: malformed YAML{at}: {problem}')


def load_text(text: str, where, error: type[UserError] = UserError):
    """Parse YAML text as plain data within the limits above."""
    if len(text) > MAX_BYTES:
        raise error(f'{where}: refused: {len(text):,} characters is more than a YAML file needs '
                    f'(limit {MAX_BYTES:,})')
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters (a binary file) at once
    except yaml.YAMLError as e:
        raise _malformed(where, e, error) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where, error)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise _malformed(where, e, error) from None
    except RecursionError:
        raise error(f'{where}: refused: nested deeper than a YAML file needs') from None
    finally:
        loader.dispose()


def read_yaml(path: Path, error: type[UserError] = UserError):
    """The file's data; every failure is ``error('<path>: ...')`` (one line)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise error(f'{path}: refused: {path.stat().st_size:,} bytes is more than a YAML file needs '
                        f'(limit {MAX_BYTES:,})')
        text = path.read_text(encoding='utf-8', errors='replace')
    except OSError as e:
        raise error(f'{path}: cannot read it ({e.strerror or e})') from None
    return load_text(text, path, error)


def safe_load(stream):
    """``yaml.safe_load`` with the limits above (a file object, bytes or str), for yolov5's modules."""
    where = getattr(stream, 'name', 'YAML')
    if hasattr(stream, 'read'):
        size = MAX_BYTES + 1
        stream = stream.read(size)
    if isinstance(stream, bytes):
        stream = stream.decode('utf-8', errors='replace')
    return load_text(stream, where)
