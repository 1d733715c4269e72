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
