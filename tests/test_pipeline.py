"""End to end, as a user runs it: tiny generated data, two-epoch SE and CBAM trains (one of them
with every socket blocked), then val, detect, export, resume, transfer and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import run_cli
from yolo_attn.integration.checkpoints import load_checkpoint

def train_args(epochs=2):
    return ['--epochs', str(epochs), '--batch-size', '8', '--imgsz', '128', '--device', 'cpu', '--workers', '0',
            '--noplots']


TRAIN = train_args()

# Runs the CLI with socket creation/connection/name lookup replaced by a recorder that refuses.
OFFLINE_RUNNER = r'''
import json, socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])
    with open(sys.argv[1], 'w') as f:
        json.dump(attempts, f)
    raise OSError('network disabled by the offline test')
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = socket.gethostbyname = refuse
with open(sys.argv[1], 'w') as f:
    json.dump(attempts, f)
from yolo_attn.cli import main
sys.exit(main(sys.argv[2:]))
'''


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    """A folder with a tiny shapes dataset and two finished trains (SE offline-guarded, CBAM)."""
    root = tmp_path_factory.mktemp('e2e')
    out = run_cli('data', 'shapes', '--out', root / 'ds', '--train', '16', '--val', '8', '--imgsz', '128', cwd=root)
    assert out.returncode == 0, out.stderr
    guard = root / 'network_attempts.json'
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    se = subprocess.run([sys.executable, '-c', OFFLINE_RUNNER, str(guard), 'train', '--data', 'ds/shapes.yaml',
                         '--cfg', 'yolov5n-se', '--weights', '', '--name', 'se', '--save-period', '1', *TRAIN],
                        cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert se.returncode == 0, se.stderr[-3000:]
    cbam = run_cli('train', '--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-cbam', '--weights', '', '--name', 'cbam',
                   *TRAIN, cwd=root)
    assert cbam.returncode == 0, cbam.stderr[-3000:]
    return {'root': root, 'guard': guard, 'se_log': se.stderr, 'cbam_log': cbam.stderr}


def test_offline_guard_saw_no_network_attempt(work):
    assert json.loads(work['guard'].read_text()) == []
    assert 'Downloading' not in work['se_log']


@pytest.mark.parametrize('name,block', [('se', 'SE'), ('cbam', 'CBAM')])
def test_train_writes_checkpoints_that_load_securely(work, name, block):
    weights = work['root'] / 'runs' / 'train' / name / 'weights'
    for f in ('best.pt', 'last.pt'):
        ckpt = load_checkpoint(weights / f)
        model = ckpt['model']
        assert [type(model.model[i]).__name__ for i in (5, 8, 12)] == [block] * 3
        assert ckpt['epoch'] == -1  # yolov5's strip_optimizer ran (it loads with weights_only=True too)


def test_val_detect_export(work):
    root, w = work['root'], 'runs/train/cbam/weights/best.pt'
    val = run_cli('val', '--data', 'ds/shapes.yaml', '--weights', w, '--imgsz', '128', '--device', 'cpu', cwd=root)
    assert val.returncode == 0, val.stderr[-3000:]
    assert 'all          8' in val.stderr and (root / 'runs' / 'val' / 'exp').is_dir()
    det = run_cli('detect', '--weights', w, '--source', 'ds/images/val', '--imgsz', '128', '--device', 'cpu',
                  '--conf-thres', '0.001', cwd=root)
    assert det.returncode == 0, det.stderr[-3000:]
    assert len(list((root / 'runs' / 'detect' / 'exp').glob('*.jpg'))) == 8
    exp = run_cli('export', '--weights', w, '--include', 'torchscript', 'onnx', '--imgsz', '128', cwd=root)
    assert exp.returncode == 0, exp.stderr[-3000:]
    weights = root / 'runs' / 'train' / 'cbam' / 'weights'
    assert (weights / 'best.torchscript').is_file() and (weights / 'best.onnx').is_file()
    again = run_cli('export', '--weights', w, '--include', 'onnx', '--imgsz', '128', cwd=root)
    assert again.returncode == 2 and 'best.onnx exists and export would overwrite it' in again.stderr


def test_onnx_matches_pytorch(work):
    ort = pytest.importorskip('onnxruntime')
    from yolov5.models.experimental import attempt_load
    weights = work['root'] / 'runs' / 'train' / 'cbam' / 'weights'
    onnx_file = weights / 'best.onnx'
    if not onnx_file.exists():
        out = run_cli('export', '--weights', weights / 'best.pt', '--include', 'onnx', '--imgsz', '128')
        assert out.returncode == 0, out.stderr[-2000:]
    model = attempt_load(weights / 'best.pt', device='cpu', fuse=True).eval()
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ref = model(x)[0].numpy()
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == ref.shape
    scale = np.array([128.0] * 4 + [1.0] * (ref.shape[-1] - 4), np.float32)  # boxes as fractions of the image
    # two numeric paths (ONNX Runtime's MLAS kernels vs PyTorch's oneDNN): measured 2.4e-7 on this model family at
    # 128 px, also with ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 and 1 or 2 threads; 1e-4 leaves 400x room
    np.testing.assert_allclose(got / scale, ref / scale, atol=1e-4, rtol=0)


def test_resume_attention_run(work):
    root = work['root']
    epoch0 = root / 'runs' / 'train' / 'se' / 'weights' / 'epoch0.pt'
    assert load_checkpoint(epoch0)['epoch'] == 0
    out = run_cli('train', '--resume', epoch0, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'Resuming training from' in out.stderr and 'from epoch 1 to 2 total epochs' in out.stderr


def test_transfer_across_inserted_layers_via_cli(work):
    root = work['root']
    out = run_cli('train', '--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-cbam', '--weights',
                  'runs/train/se/weights/best.pt', '--name', 'transfer', *train_args(1), cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(l for l in out.stderr.splitlines() if l.startswith('transferred'))
    assert line.endswith('target layers left fresh: 5 (CBAM), 8 (CBAM), 12 (CBAM)'), line
    kept, total = map(int, line.split()[1].split('/'))
    ckpt = load_checkpoint(root / 'runs' / 'train' / 'se' / 'weights' / 'best.pt')
    se_tensors = sum(1 for k in ckpt['model'].state_dict() if not k.startswith(('model.5.', 'model.8.', 'model.12.')))
    assert kept == se_tensors - 1  # all but Detect's anchors, which yolov5 excludes when --cfg is given


TWO_RUNS_IN_ONE_PROCESS = r'''
import sys
import yolo_attn
yolo_attn.activate()
from yolo_attn.integration.scripts import run_script
for name in ('first', 'second'):
    run_script('train', ['--data', 'ds/shapes.yaml', '--cfg', 'yolov5n', '--weights', '', '--name', name,
                         *sys.argv[1:]])
'''


def test_second_in_process_train_writes_only_its_own_results(work):
    """yolov5's ``train.main(opt, callbacks=Callbacks())`` shares one default across calls: a second
    run from the same process (a notebook, a benchmark) used to append its epochs to the first
    run's results.csv as well."""
    root = work['root']
    out = subprocess.run([sys.executable, '-c', TWO_RUNS_IN_ONE_PROCESS, *train_args(1)], cwd=root,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ('first', 'second'):
        rows = (root / 'runs' / 'train' / name / 'results.csv').read_text().strip().splitlines()
        assert len(rows) == 2, (name, rows)  # header + the one epoch of this run


def test_malicious_checkpoint_refused_by_cli(work, tmp_path):
    marker = tmp_path / 'marker'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    evil = tmp_path / 'evil.pt'
    torch.save({'model': Payload()}, evil)
    for cmd in (['val', '--data', 'ds/shapes.yaml', '--weights', evil],
                ['detect', '--weights', evil, '--source', 'ds/images/val'],
                ['train', '--data', 'ds/shapes.yaml', '--weights', evil, '--cfg', 'yolov5n-se']):
        out = run_cli(*cmd, cwd=work['root'])
        assert out.returncode == 2, out.stderr[-2000:]
        last = out.stderr.strip().splitlines()[-1]
        assert 'refused: it references posix.system' in last and 'nothing was executed' in last
        assert 'Traceback' not in out.stderr
    assert not marker.exists()
