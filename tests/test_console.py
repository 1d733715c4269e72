"""Issue 13, the console: torch's deprecation warnings that yolov5 triggers (and a user cannot act
on) are shown once per process, also when warning filters change between the calls; importing
yolov5 after yolo_attn says nothing about pkg_resources."""

import os
import subprocess
import sys

TRACE_THREE_TIMES = """
import warnings
from yolo_attn.integration import compat
compat.deprecations_once()
import torch
m = torch.nn.Conv2d(1, 1, 1)
for _ in range(3):  # export traces the model; torch's tracer changes the warning filters between calls
    torch.jit.trace(m, torch.zeros(1, 1, 2, 2))
    warnings.filterwarnings('ignore', message='something else')
warnings.warn('another warning', FutureWarning)
"""


def test_jit_trace_deprecation_is_shown_once_per_process():
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    out = subprocess.run([sys.executable, '-c', TRACE_THREE_TIMES], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.count('FutureWarning: `torch.jit.trace') == 1, out.stderr  # trace and trace_method: one line
    assert out.stderr.count('FutureWarning: another warning') == 1  # other warnings untouched


def test_importing_yolov5_is_quiet():
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONWARNINGS'}
    out = subprocess.run([sys.executable, '-c', 'import yolo_attn, yolov5'], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0 and 'pkg_resources is deprecated as an API' not in out.stderr, out.stderr[-2000:]
