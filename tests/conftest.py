import os
import subprocess
import sys
from pathlib import Path

import pytest

import yolo_attn  # noqa: F401  (compat, registration: what a user's `import yolo_attn` does)

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600):
    """Run ``yolo-attn`` as a user would (a subprocess) and return the CompletedProcess."""
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    return subprocess.run([sys.executable, '-m', 'yolo_attn', *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


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
