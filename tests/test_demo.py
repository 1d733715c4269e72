"""The demo pipeline end to end on a tiny budget (the real settings are measured in
benchmarks/README.md, "The demo")."""

import json
from pathlib import Path

from yolo_attn.demo import print_summary, run_demo


def test_demo_writes_everything_into_a_new_folder(tmp_path, capsys):
    (tmp_path / 'demo' / 'exp').mkdir(parents=True)
    (tmp_path / 'demo' / 'exp' / 'old.txt').write_text('keep')
    summary = run_demo(tmp_path / 'demo', 'exp', n_train=8, n_val=4, imgsz=64, epochs=1, batch=4, heatmap_images=2)
    out = Path(summary['dir'])
    assert out.name == 'exp2' and (tmp_path / 'demo' / 'exp' / 'old.txt').read_text() == 'keep'
    assert (out / 'train' / 'weights' / 'best.pt').is_file() and (out / 'val').is_dir()
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['settings']['epochs'] == 1 and saved['seconds']['total'] > 0
    results = (out / 'train' / 'results.csv').read_text().splitlines()  # what yolov5's own val wrote at epoch 0
    train_map50 = float(results[1].split(',')[6])
    assert len(results) == 2 and abs(saved['mAP50'] - train_map50) < 0.02  # the summary reports val.run on best.pt
    # the inserted CBAMs end at full strength (the ramp fits in the run) and act on the val images
    assert [(b['layer'], b['block'], b['mix']) for b in saved['blocks']] == [(5, 'CBAM', 'paper'), (8, 'CBAM', 'paper'),
                                                                          (12, 'CBAM', 'paper')]
    assert all(b['change'] > 0.05 for b in saved['blocks'])
    assert (Path(saved['heatmaps_dir']) / 'heatmaps.json').is_file()
    assert len(json.loads((Path(saved['heatmaps_dir']) / 'heatmaps.json').read_text())['images']) == 2
    print_summary(summary)
    text = capsys.readouterr().out
    assert 'yolo-attn demo finished' in text and str(out / 'summary.json') in text
    assert str(out / 'heatmaps') in text
    assert 'layer  5 CBAM     (paper) changes its features by' in text


def test_demo_starts_from_the_shipped_checkpoint_which_loads_securely():
    """The shipped stock yolov5n (pretrained on shapes seed 1) passes the allowlist loader and has the demo's classes."""
    from yolo_attn.integration.checkpoints import load_checkpoint
    from yolo_attn.demo import pretrained_weights
    from yolo_attn.data.shapes import CLASS_NAMES
    ckpt = load_checkpoint(pretrained_weights())
    names = ckpt['model'].names
    assert list(names.values() if isinstance(names, dict) else names) == list(CLASS_NAMES)
    assert 'seed 1' in ckpt['note']


def test_demo_with_missing_weights_is_one_line_and_creates_nothing(tmp_path):
    from conftest import run_cli
    out = run_cli('demo', '--project', tmp_path / 'demo', '--weights', tmp_path / 'nope.pt')
    assert out.returncode == 2 and 'weights not found' in out.stderr and 'Traceback' not in out.stderr
    assert not (tmp_path / 'demo').exists()


ULTRALYTICS_DEMO = '''
import json, sys, yolo_attn
from yolo_attn.demo import print_summary, run_demo
project = sys.argv[1]
summary = run_demo(project, 'exp', cfg='yolo11n-cbam', n_train=4, n_val=4, imgsz=320, epochs=1, batch=4,
                   heatmap_images=2)
print_summary(summary)
from ultralytics import YOLO
from yolo_attn.demo import pretrained_weights
stock = YOLO(str(pretrained_weights('yolo11n-cbam'))).val(data=summary['data'], imgsz=320, batch=8, device='cpu',
                                                            plots=False, project=project, name='stock')
print('STOCK', f'{stock.box.map50:.4f}', f'{stock.box.map:.4f}')
'''


def test_demo_with_yolo11n_cbam_trains_with_ultralytics_and_starts_as_the_shipped_stock_model(tmp_path):
    """``--model yolo11n-cbam``: ultralytics' trainer from the shipped yolo11n-shapes.pt, the same summary;
    its epoch 0 (CBAMs at blend 0) is the stock checkpoint's own validation, to the last digit."""
    import os
    import re
    import subprocess
    import sys
    (tmp_path / 'demo' / 'exp').mkdir(parents=True)
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'settings'), 'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-c', ULTRALYTICS_DEMO, str(tmp_path / 'demo')], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    saved = json.loads((tmp_path / 'demo' / 'exp2' / 'summary.json').read_text())
    assert saved['backend'].startswith('ultralytics ') and saved['settings']['cfg'] == 'yolo11n-cbam'
    assert (tmp_path / 'demo' / 'exp2' / 'train' / 'weights' / 'best.pt').is_file()
    assert [(b['layer'], b['block'], b['mix']) for b in saved['blocks']] == [(5, 'CBAM', 'paper'), (8, 'CBAM', 'paper'),
                                                                          (13, 'CBAM', 'paper')]
    assert all(b['change'] > 0.05 for b in saved['blocks'])
    assert 'target layers left fresh: 5 (CBAM), 8 (CBAM), 13 (CBAM)' in log  # every stock tensor moved
    epoch0 = re.search(r'epoch 0 \(after transfer\): mAP50 ([0-9.]+) mAP50-95 ([0-9.]+)', log).groups()
    stock = log.split('STOCK')[-1].split()[:2]
    assert list(epoch0) == stock and float(stock[0]) > 0.3  # starts as stock (a real model, not 0 == 0)
    assert (Path(saved['heatmaps_dir']) / 'heatmaps.json').is_file()  # the heatmap step ran on the ultralytics model
    assert 'model        yolo11n-cbam, trained by ultralytics 8.4.190' in out.stdout and 'layer 13 CBAM' in out.stdout


def test_demo_with_a_model_it_cannot_start_is_one_line_and_creates_nothing(tmp_path):
    from conftest import run_cli
    out = run_cli('demo', '--project', tmp_path / 'demo', '--model', 'yolov8n-cbam')
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and '--model yolov8n-cbam: the demo trains yolov5n, ' in err[0] and 'yolo11n-cbam' in err[0]
    assert not (tmp_path / 'demo').exists()


def test_the_shipped_yolo11n_checkpoint_is_small_stripped_and_loads_weights_only(tmp_path):
    """``yolo11n-shapes.pt`` (``tools/pretrain_ultralytics_shapes.py``): stock yolo11n on shapes seed 1, the demo's
    classes, no optimizer state, under 7 MB; ``YOLO(path)`` loads it through the weights-only loader."""
    import os
    import subprocess
    import sys
    from yolo_attn.data.shapes import CLASS_NAMES
    from yolo_attn.demo import pretrained_weights
    path = pretrained_weights('yolo11n-cbam')
    assert path.name == 'yolo11n-shapes.pt' and path.stat().st_size < 7e6
    probe = ('import sys, yolo_attn\nfrom ultralytics import YOLO\nm = YOLO(sys.argv[1])\n'
             "print('NAMES', list(m.model.names.values()), m.ckpt['optimizer'], m.ckpt['ema'],\n"
             "      'seed 1' in m.ckpt['note'])")
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path / 'settings'), 'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-c', probe, str(path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split('NAMES')[-1].strip() == f'{list(CLASS_NAMES)} None None True'


def test_the_pretraining_script_never_overwrites_its_output(tmp_path):
    import subprocess
    import sys
    from conftest import ROOT
    out = tmp_path / 'mine.pt'
    out.write_bytes(b'keep')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'pretrain_ultralytics_shapes.py'), '--out', str(out),
                        '--data-dir', str(tmp_path / 'data')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'exists; move it away first' in r.stderr and out.read_bytes() == b'keep'
    assert not (tmp_path / 'data').exists()
