import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# One torch/OpenMP thread per test process, and per CLI subprocess it starts (the environment is
# inherited), unless YOLO_ATTN_TEST_THREADS says otherwise: the suite runs one pytest-xdist worker per
# core, and an oversubscribed OpenMP pool spin-waits (a 2-thread training step ran 10x slower beside
# one other busy process on 2 cores). Set before torch is imported.
os.environ.setdefault('OMP_NUM_THREADS', os.environ.get('YOLO_ATTN_TEST_THREADS', '1'))

import yolo_attn  # noqa: F401  (compat, registration: what a user's `import yolo_attn` does)

ROOT = Path(__file__).resolve().parents[1]

pytest.register_assert_rewrite('bad_input')  # its checks fail with pytest's detail, as a test module's do


def run_cli(*args, cwd=None, timeout=600):
    """Run ``yolo-attn`` as a user would (a subprocess) and return the CompletedProcess."""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    return subprocess.run([sys.executable, '-m', 'yolo_attn', *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def no_network(monkeypatch):
    """Every connection, name lookup and child process is recorded and refused."""
    attempts = []

    def refuse(what):
        def f(*args, **kwargs):
            attempts.append((what, args[:2]))
            raise OSError(f'test: {what} attempted')
        return f

    monkeypatch.setattr(socket.socket, 'connect', refuse('connect'))
    monkeypatch.setattr(socket, 'create_connection', refuse('create_connection'))
    monkeypatch.setattr(socket, 'getaddrinfo', refuse('getaddrinfo'))
    monkeypatch.setattr(subprocess, 'Popen', refuse('subprocess'))
    return attempts


@pytest.fixture(scope='session')
def yolov5_models_dir():
    import yolov5
    return Path(yolov5.__file__).parent / 'models'


@pytest.fixture(scope='module')
def one_thread():
    """Many small tensors: one torch thread is faster than two when the 2 CPU cores are shared."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


WS_IMGSZ = 160  # image size of the heatmap workspace below
SHAPES_NAMES = ('circle', 'square', 'triangle', 'star', 'cross')


def calibrate_batchnorm(model, ds):
    """Set BatchNorm statistics from real images (no training), so a random model's scores vary
    from cell to cell instead of saturating into ties."""
    import cv2
    import torch
    files = sorted((ds / 'images' / 'train').glob('*.jpg'))
    ims = torch.stack([torch.from_numpy(cv2.imread(str(f))[..., ::-1].copy()).permute(2, 0, 1) for f in files]) / 255
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(ims)
    return model.eval()


def random_detector(ds, seed=0, cfg='yolov5n-cbam'):
    """A random-init model with one objectness prior on all heads and calibrated BatchNorm: it
    detects (meaninglessly) on every head of the shapes images in ``ds``."""
    import torch
    from yolo_attn.config.files import load_cfg
    from yolov5.models.yolo import Model
    torch.manual_seed(seed)
    model = Model(load_cfg(cfg), nc=len(SHAPES_NAMES))
    detect = model.model[-1]
    prior = max(float(conv.bias.view(detect.na, -1)[:, 4].max()) for conv in detect.m)
    for conv in detect.m:  # one objectness prior on all heads (yolov5's init favours large strides)
        conv.bias.data.view(detect.na, -1)[:, 4] = prior
    model = calibrate_batchnorm(model, ds)
    model.names = dict(enumerate(SHAPES_NAMES))
    return model


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """A workspace: shapes images in ``ds`` (8 train, 3 val at WS_IMGSZ) and ``w.pt``, a random-init
    yolov5n-cbam with calibrated BatchNorm (``random_detector``)."""
    import torch
    from yolo_attn.data.shapes import generate_shapes
    root = tmp_path_factory.mktemp('hm')
    generate_shapes(root / 'ds', n_train=8, n_val=3, imgsz=WS_IMGSZ, progress=False)
    torch.save({'model': random_detector(root / 'ds').half(), 'epoch': -1}, root / 'w.pt')
    return root


# The files whose end-to-end tests take longest (subprocess trainings, exports, torchrun), slowest
# first. pytest-xdist's --dist loadfile with --no-loadscope-reorder (the Makefile) hands files to
# workers in collection order (by default it reorders them by test count), so starting these first
# keeps one of them from being the last file left to one worker while the others sit idle.
SLOW_FIRST = ('test_user_blocks.py', 'test_pipeline.py', 'test_distributed.py', 'test_evaluation.py',
              'test_heatmaps.py', 'test_cli.py', 'test_attn_start.py', 'test_interrupts.py', 'test_bad_options.py',
              'test_output_safety.py', 'test_resource_limits.py')


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: order within a file kept


def ultralytics_detector(ds, cfg='yolo11n-cbam.yaml', seed=0, prior=-2.0):
    """``random_detector`` for ultralytics: a random-init model of ``cfg`` (a shipped or stock YAML
    name) with class logits shifted to ``prior`` on every head and calibrated BatchNorm."""
    import torch
    from yolo_attn.ultralytics import install
    install()
    from ultralytics.nn.tasks import DetectionModel
    torch.manual_seed(seed)
    model = DetectionModel(cfg, ch=3, nc=len(SHAPES_NAMES), verbose=False)
    detect = model.model[-1]
    for branch in (detect.cv3, getattr(detect, 'one2one_cv3', None) or []):
        for seq in branch:
            seq[-1].bias.data[:] = prior
    model = calibrate_batchnorm(model, ds)
    model.names = dict(enumerate(SHAPES_NAMES))
    return model


@pytest.fixture(scope='module')
def uws(ws):
    """The heatmap workspace ``ws`` plus ultralytics checkpoints: ``y11.pt`` (random yolo11n-cbam) and
    ``y26.pt`` (random yolo26n, an NMS-free head), saved as ultralytics saves a model."""
    import torch
    for name, cfg in (('y11.pt', 'yolo11n-cbam.yaml'), ('y26.pt', 'yolo26n.yaml')):
        torch.save({'model': ultralytics_detector(ws / 'ds', cfg).half(), 'train_args': {}}, ws / name)
    return ws
