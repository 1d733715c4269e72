"""The package's shape: no import cycle (imports inside functions count), dependencies one way.

Every ``import`` / ``from ... import`` statement of every module in ``yolo_attn`` is read with
``ast`` — at module level and inside functions alike, since an import moved into a function
hides a cycle, it does not remove it. The graph's nodes are modules; ``from pkg import name``
counts as an edge to ``pkg.name`` when that is a module, else to ``pkg``; importing a package
also runs its ``__init__``, which is an edge to the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'yolo_attn'


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


MODULES = {module_name(p): p for p in PKG.rglob('*.py')}


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ''
    base = current.split('.') if is_package else current.split('.')[:-1]
    base = base[:len(base) - (level - 1)]
    return '.'.join(base + ([module] if module else []))


def imports_of(name: str) -> set[str]:
    """The package modules ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding='utf-8'))
    is_package = path.name == '__init__.py'
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in MODULES else base for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, 'attr', getattr(node.func, 'id', '')) == 'import_module'
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            target = node.args[0].value  # importlib.import_module('..x', __package__) / ('yolo_attn.x')
            level = len(target) - len(target.lstrip('.'))
            targets = [_resolve(name, is_package, level, target.lstrip('.') or None) if level else target]
        for t in targets:
            while t and t not in MODULES and '.' in t:
                t = t.rsplit('.', 1)[0]
            if t in MODULES and t != name:
                found.add(t)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first repeated at the end), or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 'open'
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 'open':
                return stack[stack.index(m):] + [m]
            if m not in state:
                cycle = visit(m)
                if cycle:
                    return cycle
        state[n] = 'done'
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            if cycle:
                return cycle
    return None


def package_graph() -> dict[str, set[str]]:
    """Edges between modules; a package's ``__init__`` importing its own submodules is not a cycle
    with them (importing ``pkg.sub`` runs ``pkg`` first, so that edge is not drawn)."""
    return {n: {m for m in imports_of(n) if not n.startswith(m + '.')} for n in MODULES}


def test_the_walker_sees_imports_inside_functions_and_finds_a_cycle():
    """The checker itself: an import in a function body is an edge, and a two-module loop is found."""
    assert 'yolo_attn.config.summary' in imports_of('yolo_attn.cli.model')  # imported inside run_build
    assert 'yolo_attn.heatmaps.runner' in imports_of('yolo_attn.cli.heatmaps')
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(package_graph())
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


@pytest.mark.parametrize('low, high', [
    ('yolo_attn.errors', 'yolo_attn'),  # the lowest module imports nothing of the package
    ('yolo_attn.blocks.registry', 'yolo_attn.config'),  # blocks and the registry know nothing of YAML files
    ('yolo_attn.blocks', 'yolo_attn.config'),
    ('yolo_attn.config', 'yolo_attn.integration'),  # model configs do not drive yolov5's scripts
    ('yolo_attn.config', 'yolo_attn.heatmaps'),
    ('yolo_attn.config', 'yolo_attn.cli'),
    ('yolo_attn.heatmaps', 'yolo_attn.evaluation'),  # the engine does not know how it is scored
    ('yolo_attn.evaluation.metrics', 'yolo_attn.heatmaps'),  # metrics take maps (captum's rule)
    ('yolo_attn.evaluation.compare', 'yolo_attn.evaluation.evaluate'),  # two commands, shared code in options
    ('yolo_attn.mapstats', 'yolo_attn.heatmaps'),
    ('yolo_attn.integration', 'yolo_attn.ultralytics'),  # neither backend imports the other
    ('yolo_attn.ultralytics', 'yolo_attn.integration'),
    ('yolo_attn.blocks', 'yolo_attn.integration'),  # the block layer is backend-free
    ('yolo_attn.blocks', 'yolo_attn.ultralytics'),
])
def test_dependencies_point_one_way(low, high):
    """Nothing in ``low`` (a module or a package) imports anything in ``high``."""
    graph = package_graph()
    sources = [n for n in MODULES if n == low or n.startswith(low + '.')]
    wrong = sorted((s, t) for s in sources for t in graph[s]
                   if (t == high or t.startswith(high + '.')) and not (t == low or t.startswith(low + '.')))
    assert not wrong, f'{low} must not import {high}: ' + ', '.join(f'{s} -> {t}' for s, t in wrong)


def test_nms_keeps_the_row_index_of_a_float16_prediction():
    """The NMS index is carried in float32 at least: exact for every row of yolov5s at 640 in float16."""
    import torch

    from yolo_attn.heatmaps.engine import nms_with_index
    n = 25200
    pred = torch.zeros(1, n, 85, dtype=torch.float16)
    rows = torch.tensor([3, 2049, 19999, 25199])
    for k, r in enumerate(rows):
        pred[0, r, :4] = torch.tensor([100. * k + 50, 50., 20., 20.])  # disjoint boxes, kept by NMS
        pred[0, r, 4] = 0.9 - 0.1 * k  # objectness
        pred[0, r, 5] = 0.9
    (det, index), = nms_with_index(pred, 0.25, 0.45, None, False, 300)
    assert sorted(index.tolist()) == rows.tolist()
