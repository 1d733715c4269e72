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
