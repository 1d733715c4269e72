"""Ultralytics' own machinery with the plugin: ``yolo-attn yolo detect train`` on a YOLO11 attention YAML
(1 epoch on tiny generated data), then val and predict with the checkpoint it saved — in fresh
processes, from another folder, with every network connection refused and none attempted."""

import csv
import os
import re
import subprocess
import sys
import textwrap

import pytest

GUARD = '''
import socket, sys
tried = []
def refuse(self, address, *a, **k):
    tried.append(address)
    raise OSError('network refused by the test')
socket.socket.connect = refuse
socket.create_connection = lambda address, *a, **k: refuse(None, address)
from yolo_attn.cli import main
code = main(sys.argv[1:])
print('CONNECTIONS', tried)
sys.exit(code)
'''


def yolo_attn(args, cwd, tmp_path):
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'ultralytics_settings'), 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore'}
    env.pop('YOLO_OFFLINE', None)  # the plugin itself keeps ultralytics offline
    return subprocess.run([sys.executable, '-c', textwrap.dedent(GUARD), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('ut')
    from yolo_attn.data.shapes import generate_shapes
    data = generate_shapes(tmp / 'shapes', n_train=8, n_val=4, imgsz=64, seed=0, progress=False)
    out = yolo_attn(['yolo', 'detect', 'train', 'model=yolo11n-se.yaml', f'data={data}', 'epochs=1', 'imgsz=64',
                     'batch=4', 'device=cpu', 'workers=0', f'project={tmp / "runs"}', 'name=train', 'plots=False'],
                    tmp, tmp)
    return tmp, data, out


def connections(out) -> str:
    return out.stdout.split('CONNECTIONS')[-1].strip()


def test_train_builds_the_attention_model_and_saves_it_offline(trained):
    tmp, _, out = trained
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert (tmp / 'runs' / 'train' / 'weights' / 'best.pt').is_file()
    assert 'yolo11n-se' in (out.stdout + out.stderr).lower()  # ultralytics' own summary line names the model
    assert connections(out) == '[]'
    # ultralytics' labels.cache (a pickle) is neither written beside the dataset's labels nor anywhere in it
    assert sorted(p.name for p in (tmp / 'shapes').rglob('*') if p.is_file() and p.suffix not in ('.jpg', '.txt')) \
        == ['shapes.yaml']
    assert 'no cache written to' in out.stdout + out.stderr


def test_val_and_predict_load_the_checkpoint_weights_only(trained):
    tmp, data, _ = trained
    best = tmp / 'runs' / 'train' / 'weights' / 'best.pt'
    for args in (['yolo', 'detect', 'val', f'model={best}', f'data={data}', 'imgsz=64', 'batch=4', 'device=cpu',
                  'workers=0', f'project={tmp / "runs"}', 'name=val', 'plots=False'],
                 ['yolo', 'detect', 'predict', f'model={best}', f'source={data.parent / "images" / "val"}',
                  'imgsz=64', 'device=cpu', f'project={tmp / "runs"}', 'name=predict', 'save=False', 'conf=0.001']):
        out = yolo_attn(args, tmp, tmp)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        assert connections(out) == '[]'
    import torch
    ckpt = torch.load(best, weights_only=False)  # our own file from the run above
    model = ckpt.get('model') or ckpt.get('ema')
    blocks = [type(m).__module__ + '.' + type(m).__name__ for m in model.model if type(m).__name__ == 'SE']
    assert blocks == ['yolo_attn.blocks.se.SE'] * 3  # what val and predict loaded through the allow-list


def test_a_bad_ultralytics_argument_is_one_line(tmp_path):
    out = yolo_attn(['yolo', 'detect', 'train', 'modle=yolo11n-se.yaml'], tmp_path, tmp_path)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "'modle' is not a valid YOLO argument" in err[0]


def test_pretrained_transfer_ramps_new_blocks_and_saves_the_papers_formulas(trained):
    tmp, data, _ = trained
    runs = tmp / 'runs'
    common = [f'data={data}', 'imgsz=64', 'batch=4', 'device=cpu', 'workers=0', f'project={runs}', 'plots=False']
    out = yolo_attn(['yolo', 'detect', 'train', 'model=yolo11n.yaml', 'epochs=1', 'name=stock', *common], tmp, tmp)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    out = yolo_attn(['yolo', 'detect', 'train', 'model=yolo11n-cbam.yaml', f'pretrained={runs / "stock/weights/last.pt"}',
                     'epochs=3', 'attn_ramp=1.5', 'name=cbam', *common], tmp, tmp)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert 'target layers left fresh: 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log  # every stock tensor moved
    assert 'attention start: ramp for layers 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log
    assert re.search(r'epoch 0 \(after transfer\): mAP50 [0-9.]+ mAP50-95 [0-9.]+', log)  # before the first batch
    assert log.index('epoch 0 (after transfer)') < log.index('attention: layer 5 CBAM')
    assert re.search(r'attention: layer 5 CBAM blend 1\.00, changes its features by [0-9.]+ %; layer 8 CBAM', log)
    rows = list(csv.DictReader(open(runs / 'cbam' / 'attention.csv')))  # per epoch and block, epochs as results.csv
    assert [(r['epoch'], r['layer'], r['block']) for r in rows] == [(e, i, 'CBAM') for e in '123'
                                                                    for i in ('5', '8', '13')]
    assert 'blend rises to 1 over the first 3 iterations (1.5 epochs of 2 batches)' in log  # attn_ramp=1.5
    assert [r['mix'] for r in rows[::3]] == ['blend 0.67', 'blend 1.00', 'blend 1.00']
    assert float(rows[-1]['change']) > 0.05
    import torch
    for f in ('last.pt', 'best.pt'):
        ckpt = torch.load(runs / 'cbam' / 'weights' / f, weights_only=False)
        model = ckpt.get('model') or ckpt.get('ema')
        assert [type(model.model[i]).__name__ for i in (5, 8, 13)] == ['CBAM'] * 3
        assert not any(k.endswith('attn_blend') for k in model.state_dict())  # the papers' formulas


def test_onnx_export_matches_onnxruntime_and_installs_nothing(trained):
    tmp, _, _ = trained
    best = tmp / 'runs' / 'train' / 'weights' / 'best.pt'
    out = yolo_attn(['yolo', 'export', f'model={best}', 'format=onnx', 'imgsz=64', 'simplify=False'], tmp, tmp)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert connections(out) == '[]'
    onnx_file = best.with_suffix('.onnx')
    check = textwrap.dedent(f'''
        import numpy as np, onnxruntime as ort, torch, yolo_attn
        from ultralytics import YOLO
        model = YOLO({str(best)!r}).model.fuse().eval().float()
        x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            want = model(x)[0].numpy()
        got = ort.InferenceSession({str(onnx_file)!r}, providers=['CPUExecutionProvider']).run(None, {{'images': x.numpy()}})[0]
        print('RESULT', got.shape == want.shape, float(np.abs(got - want).max()))
    ''')
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp / 'ultralytics_settings'), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([sys.executable, '-c', check], cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    same_shape, diff = r.stdout.split('RESULT')[-1].split()
    assert same_shape == 'True' and float(diff) < 1e-3  # float32 through two runtimes
    # ultralytics' default simplify=True wants onnxslim, which is not installed: one line, nothing installed
    out = yolo_attn(['yolo', 'export', f'model={best}', 'format=onnx', 'imgsz=64', f'project={tmp / "exp2"}'],
                    tmp, tmp)
    assert out.returncode == 2, (out.stdout + out.stderr)[-2000:]
    assert 'onnxslim' in out.stderr and 'yolo-attn installs nothing' in out.stderr
    assert 'AutoUpdate' not in out.stdout + out.stderr and 'pip install --no-cache-dir' not in out.stdout + out.stderr


def test_heatmap_on_the_trained_checkpoint_writes_the_documented_outputs(trained):
    """`yolo-attn heatmap` on the user's own ultralytics checkpoint, from another folder, offline."""
    import json
    tmp, data, _ = trained
    user = tmp / 'user_heatmaps'
    user.mkdir()
    out = yolo_attn(['heatmap', '--weights', tmp / 'runs' / 'train' / 'weights' / 'best.pt', '--source',
                     data.parent / 'images' / 'val', '--imgsz', '64', '--conf-thres', '0.0001', '--max-det', '4',
                     '--no-html'], user, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    assert connections(out) == '[]'
    m = json.loads((user / 'runs' / 'heatmap' / 'exp' / 'heatmaps.json').read_text())
    assert m['complete'] and m['backend'].startswith('ultralytics') and len(m['images']) == 4
    dets = [d for image in m['images'] for d in image['detections']]
    assert dets and all((user / d['png']).is_file() for d in dets)
    assert all((user / image['overview']).is_file() for image in m['images'])
    for d in dets:
        assert d['objectness'] is None and abs(d['class_prob'] - d['score']) < 1e-5
        assert d['head_level'] in m['head_levels'] and not d['constant_map']
