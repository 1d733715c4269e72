"""torchrun, as a user runs it: yolov5's own DDP training with 2 CPU processes (gloo), two launchers
meeting by c10d rendezvous on localhost (two "nodes"), a user block imported in every rank through
``YOLO_ATTN_IMPORTS``, and heatmaps sharded across ranks equal to one process.

A probe module (imported in every rank through ``YOLO_ATTN_IMPORTS``, as a user's block module is)
registers a block the model YAML uses, leaves a marker per rank, and at exit writes a digest of
that rank's trained parameters: with DDP the ranks end with identical weights; without it (each
rank seeds its own initialisation and reads its own share of the data) they would differ.
"""

import hashlib
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = r'''
import atexit
import hashlib
import os
from pathlib import Path

import torch
import torch.nn as nn

from yolo_attn import register_block

RANK = os.environ.get('RANK', '-1')
Path(f'imported_rank{RANK}').write_text(os.environ.get('LOCAL_RANK', '-1'))


@register_block
class ProbeGate(nn.Module):
    """A user block: a per-channel sigmoid gate (1x1 conv on the pooled input)."""

    def __init__(self, c1):
        super().__init__()
        self.fc = nn.Conv2d(c1, c1, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


import yolov5.train as _train

_optimizer = _train.smart_optimizer


def _digest(model):
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode() + p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def smart_optimizer(model, *args, **kwargs):
    atexit.register(lambda: Path(f'params_rank{RANK}').write_text(_digest(model)))
    return _optimizer(model, *args, **kwargs)


_train.smart_optimizer = smart_optimizer
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def env_with_probe() -> dict:
    return {**os.environ, 'PYTHONWARNINGS': 'ignore', 'YOLO_ATTN_IMPORTS': 'probe', 'OMP_NUM_THREADS': '1'}


def torchrun(*args, cwd, env=None, timeout=300) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-m', 'torch.distributed.run', *map(str, args)], cwd=cwd,
                            env=env or env_with_probe(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


TRAIN = ['train', '--data', 'ds/shapes.yaml', '--cfg', 'probe.yaml', '--weights', '', '--epochs', '1',
         '--batch-size', '4', '--imgsz', '64', '--device', 'cpu', '--workers', '0', '--noplots']


def probe_cfg() -> str:
    """yolov5n-se.yaml with the user's ProbeGate in place of SE."""
    from yolo_attn.config.files import resolve_cfg
    return resolve_cfg('yolov5n-se').read_text().replace('SE, []', 'ProbeGate, []')


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    """A folder with tiny shapes data (8 train, 4 val images at 64 px), the probe module and its YAML."""
    from yolo_attn.data.shapes import generate_shapes
    root = tmp_path_factory.mktemp('ddp')
    generate_shapes(root / 'ds', n_train=8, n_val=4, imgsz=64, progress=False)
    (root / 'probe.py').write_text(PROBE)
    (root / 'probe.yaml').write_text(probe_cfg())
    return root


def fresh(work, name) -> Path:
    """A new working folder sharing ``work``'s data, probe and YAML (markers are per folder)."""
    folder = work / name
    folder.mkdir()
    for f in ('ds', 'probe.py', 'probe.yaml'):
        (folder / f).symlink_to(work / f)
    return folder


def assert_ddp_run(folder: Path, log: str) -> None:
    """One run folder with best.pt holding the user block; every rank imported it; identical weights."""
    runs = sorted(p.name for p in (folder / 'runs' / 'train').iterdir())
    assert runs == ['exp'], runs  # rank 0 chose and wrote the run folder; no rank made its own
    best = folder / 'runs' / 'train' / 'exp' / 'weights' / 'best.pt'
    assert best.is_file(), log[-3000:]
    with zipfile.ZipFile(best) as z:
        pickled = z.read(next(n for n in z.namelist() if n.endswith('data.pkl')))
    assert b'ProbeGate' in pickled and b'probe' in pickled
    assert (folder / 'imported_rank0').is_file() and (folder / 'imported_rank1').is_file()
    digests = [(folder / f'params_rank{r}').read_text() for r in (0, 1)]
    assert digests[0] == digests[1], 'ranks ended with different weights: gradients were not all-reduced'


def test_two_process_cpu_training(work):
    """``torchrun --nproc_per_node 2 -m yolo_attn train --device cpu``: yolov5's DDP over gloo."""
    folder = fresh(work, 'one_node')
    proc = torchrun('--nproc_per_node', 2, '--master_addr', '127.0.0.1', '--master_port', free_port(),
                    '-m', 'yolo_attn', *TRAIN, cwd=folder)
    log = finish(proc)
    assert_ddp_run(folder, log)
    assert (folder / 'imported_rank0').read_text() == '0' and (folder / 'imported_rank1').read_text() == '1'
    assert 'insufficient CUDA devices' not in log


def test_two_launchers_rendezvous_on_localhost(work):
    """Two ``torchrun --nnodes 2 --nproc_per_node 1`` launchers meet at a c10d endpoint: ranks 0 and 1,
    each its node's local rank 0."""
    folder = fresh(work, 'two_nodes')
    endpoint = f'127.0.0.1:{free_port()}'
    launch = ['--nnodes', 2, '--nproc_per_node', 1, '--rdzv-backend', 'c10d', '--rdzv-endpoint', endpoint,
              '--rdzv-id', 'yolo-attn-test', '-m', 'yolo_attn', *TRAIN]
    nodes = [torchrun(*launch, cwd=folder) for _ in range(2)]
    logs = [finish(p) for p in nodes]
    assert_ddp_run(folder, '\n'.join(logs))
    assert (folder / 'imported_rank0').read_text() == '0' and (folder / 'imported_rank1').read_text() == '0'


def test_source_edits_apply_once_and_refuse_other_code(tmp_path, monkeypatch):
    """``edit_function`` replaces exact lines (keeping file, line numbers and defaults) and raises on
    code that lacks them: another yolov5 fails loudly instead of training without DDP."""
    import importlib
    from yolo_attn.integration.distributed import edit_function
    (tmp_path / 'fake_train.py').write_text('\n\ndef main(x, y=2):\n    if x:\n        return x + y\n    return 0\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module('fake_train')
    edit_function(module, 'main', ('    if x:\n', '    if x is not None:\n'))
    assert module.main(0) == 2 and module.main(1) == 3  # default kept, condition edited
    assert module.main.__code__.co_filename.endswith('fake_train.py') and module.main.__code__.co_firstlineno == 3
    edit_function(module, 'main', ('no such line', ''))  # already edited: left alone
    module.main._yolo_attn_edited = False
    with pytest.raises(RuntimeError, match='not the yolov5 7.0.14 code'):
        edit_function(module, 'main', ('    if cuda and RANK != -1:\n', ''))


# ---- sharded explanation ------------------------------------------------------------------------------

def test_share_is_a_deterministic_contiguous_split():
    from yolo_attn.heatmaps.shard import owners, share
    items = list(range(7))
    assert [share(items, r=r, size=3) for r in range(3)] == [[0, 1], [2, 3], [4, 5, 6]]
    assert [share(items[:1], r=r, size=2) for r in range(2)] == [[], [0]]  # more ranks than items
    files = ['a/x.jpg', 'a/y.jpg', 'b/w.jpg', 'b/x.jpg']  # b/x.jpg is named like a/x.jpg: a/x.jpg's rank
    assert owners(files, key=lambda f: Path(f).stem, size=2) == [0, 0, 1, 0]


def fake_evaluate_method(images, sanity_max):
    """``evaluate_method``'s contract: rows of matched detections in order, the first ``sanity_max``
    of them sanity-checked (``checks``), counts summed or listed per image."""
    rows, checks, counts = [], {'rhos': [], 'levels': []}, {'detections': 0, 'curve_seconds': []}
    for dets in images:
        for d in dets:
            checked = len(checks['rhos']) < sanity_max
            rho = float(d) if checked else float('nan')
            if checked:
                checks['rhos'].append((rho, rho, rho))
                checks['levels'].append(f'P{d % 3 + 3}')
            rows.append({'id': d, 'sanity_rho': rho, 'sanity_rho_partial': rho, 'sanity_rho_prior': rho})
        counts['detections'] += len(dets)
        counts['curve_seconds'].append(0.1 * len(dets))
    return rows, checks, counts


@pytest.mark.parametrize('sanity_max', [0, 1, 2, 3, 5, 100])
def test_merged_evaluation_equals_one_process(sanity_max):
    """Each rank checks its own first ``sanity_max``; the merge keeps the split's first ``sanity_max``."""
    from yolo_attn.evaluation.shard import merge_evaluation
    from yolo_attn.heatmaps.shard import share
    images = [[1, 2], [], [3], [4, 5, 6], [7]]
    for size in (2, 3):
        parts = [fake_evaluate_method(share(images, r=r, size=size), sanity_max) for r in range(size)]
        assert_same(list(merge_evaluation(parts, sanity_max)), list(fake_evaluate_method(images, sanity_max)))


def shipped_shapes_weights() -> Path:
    """The shipped stock yolov5n trained on the shapes data (it detects real objects there)."""
    return next(p for p in (ROOT / 'yolo_attn' / 'models' / 'pretrained', ROOT / 'models' / 'pretrained')
                if (p / 'yolov5n-shapes.pt').is_file()) / 'yolov5n-shapes.pt'


@pytest.fixture(scope='module')
def explain_ws(tmp_path_factory):
    """5 labelled shapes images at 160 px, one of them also in ``dup/`` under the same name (listed in
    ``list.txt``: one process names its outputs ``<stem>`` and ``<stem>_2``), the shipped shapes model
    and a random-init detector (``random.pt``) for heatmap-compare."""
    import torch
    from conftest import random_detector
    from yolo_attn.data.shapes import generate_shapes
    root = tmp_path_factory.mktemp('shard')
    generate_shapes(root / 'ds', n_train=4, n_val=5, imgsz=160, progress=False)
    torch.save({'model': random_detector(root / 'ds', seed=1).half(), 'epoch': -1}, root / 'random.pt')
    val = sorted((root / 'ds' / 'images' / 'val').glob('*.jpg'))
    (root / 'dup').mkdir()
    (root / 'dup' / val[0].name).write_bytes(val[0].read_bytes())
    (root / 'list.txt').write_text('\n'.join(str(p) for p in [*val, root / 'dup' / val[0].name]) + '\n')
    return root


def one_and_two(root: Path, *args, project: str) -> tuple[str, str]:
    """The command in one process (1 thread, as each torchrun rank) and in 2 ranks: (one, two) logs;
    the results are in ``<project>1/exp`` and ``<project>2/exp``."""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore', 'OMP_NUM_THREADS': '1'}
    proc = torchrun('--nproc_per_node', 2, '--master_addr', '127.0.0.1', '--master_port', free_port(),
                    '-m', 'yolo_attn', *args, '--project', f'{project}2', cwd=root, env=env)
    one = subprocess.run([sys.executable, '-m', 'yolo_attn', *map(str, args), '--project', f'{project}1'], cwd=root,
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    return one.stdout, finish(proc)


def assert_same(a, b, path='', rel=1e-4, abs_=1e-5):
    """JSON-like values equal; floats within float32 tolerances (the ranks compute the same things, in
    other processes); strings compared with the run folders' own names removed."""
    import math
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), path
        for k in a:
            assert_same(a[k], b[k], f'{path}.{k}', rel, abs_)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{path}[{i}]', rel, abs_)
    elif isinstance(a, float) or isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=abs_), (path, a, b)
    elif isinstance(a, str):
        assert a.replace('hm1/', '').replace('ev1/', '').replace('cm1/', '') == \
            b.replace('hm2/', '').replace('ev2/', '').replace('cm2/', ''), path
    else:
        assert a == b, (path, a, b)


def read_csv(path: Path) -> list[dict]:
    import csv
    def value(v):
        try:
            return float(v)
        except ValueError:
            return v
    with open(path, newline='') as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def assert_same_images(one: Path, two: Path, suffix: str) -> None:
    import cv2
    import numpy as np
    names = sorted(p.name for p in one.glob(f'*{suffix}'))
    assert names and names == sorted(p.name for p in two.glob(f'*{suffix}'))
    for name in names:
        if suffix == '.npy':
            np.testing.assert_allclose(np.load(one / name), np.load(two / name), atol=1e-4)
        else:
            a, b = (cv2.imread(str(d / name)).astype(int) for d in (one, two))
            assert a.shape == b.shape and np.mean(np.abs(a - b) > 2) < 1e-3, name  # a map level may round apart


def test_sharded_heatmap_equals_one_process(explain_ws):
    """2 ranks write what one process writes: the same files (also ``<stem>_2`` of the same name in
    two folders), maps, detections and manifest, plus each rank's share and seconds."""
    import json
    args = ['heatmap', '--weights', shipped_shapes_weights(), '--source', 'list.txt', '--imgsz', 160,
            '--max-det', 4, '--save-maps']
    _, log = one_and_two(explain_ws, *args, project='hm')
    one, two = explain_ws / 'hm1' / 'exp', explain_ws / 'hm2' / 'exp'
    a, b = (json.loads((d / 'heatmaps.json').read_text()) for d in (one, two))
    shards = b.pop('shards')
    assert [s['rank'] for s in shards] == [0, 1] and sum(s['images'] for s in shards) == 6
    assert all(s['images'] > 0 for s in shards), shards
    assert b['complete'] and len(b['images']) == 6 and sum(len(i['detections']) for i in b['images']) > 5
    for m in (a, b):
        m.pop('seconds')
    assert_same(a, b)
    assert not (two / '.shards').exists()
    assert_same_images(one, two, '.npy')
    assert_same_images(one, two, '.png')
    assert any(p.name.endswith('_2.png') for p in two.glob('*.png'))
    assert 'merged 2 ranks' in log and 'rank 1 (' in log


def test_sharded_heatmap_eval_equals_one_process(explain_ws):
    """2 ranks give the rows, summary and sanity verdicts of one process; with ``--sanity-max 1`` only
    the split's first matched detection is checked, though each rank checked its own first."""
    args = ['heatmap-eval', '--weights', shipped_shapes_weights(), '--data', 'ds/shapes.yaml', '--imgsz', 160,
            '--steps', 4, '--sanity-max', 1]
    _, log = one_and_two(explain_ws, *args, project='ev')
    one, two = explain_ws / 'ev1' / 'exp', explain_ws / 'ev2' / 'exp'
    for name in ('results.csv', 'summary.csv', 'sanity.csv'):
        assert_same(read_csv(one / name), read_csv(two / name))
    rows = read_csv(two / 'results.csv')
    images = sorted({r['image'] for r in rows})
    assert len(images) >= 2 and len(rows) >= 3  # matched detections in both ranks' shares
    assert sum(isinstance(r['sanity_rho'], float) for r in rows) == 1  # not blank (NaN): the split's first only
    assert 'heatmap-eval elementwise: rank 0' in log and (two / 'curves.png').is_file()


def test_sharded_heatmap_compare_equals_one_process(explain_ws):
    args = ['heatmap-compare', '--weights', shipped_shapes_weights(), 'random.pt', '--source', 'ds/images/val',
            '--imgsz', 160, '--max-det', 3, '--steps', 2]
    _, log = one_and_two(explain_ws, *args, project='cm')
    one, two = explain_ws / 'cm1' / 'exp', explain_ws / 'cm2' / 'exp'
    for name in ('objects.csv', 'metrics.csv'):
        assert_same(read_csv(one / name), read_csv(two / name))
    assert_same_images(one, two, '.png')
    assert 'heatmap-compare: rank 0' in log
