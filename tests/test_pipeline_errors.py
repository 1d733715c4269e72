"""Bad input to train/val/detect/export: one line, exit code 2, nothing run, nothing overwritten."""

import shutil

import pytest
import torch

from conftest import run_cli
from yolo_attn.cli import main
from yolo_attn.config.files import load_cfg
from yolo_attn.data.shapes import generate_shapes
from yolov5.models.yolo import Model


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad')
    generate_shapes(root / 'ds', n_train=4, n_val=2, imgsz=64, progress=False)
    torch.save({'model': Model(load_cfg('yolov5n-se')).half(), 'epoch': -1}, root / 'ok.pt')
    return root


def run(ws, monkeypatch, capsys, *argv):
    monkeypatch.chdir(ws)
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err[-1] if err else ''


TRAIN = ['--cfg', 'yolov5n-se', '--weights', '', '--epochs', '1', '--imgsz', '64', '--device', 'cpu']


def test_missing_data_yaml(ws, monkeypatch, capsys):
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'nope.yaml', *TRAIN)
    assert rc == 2 and last == 'yolo-attn train: error: data YAML not found: nope.yaml'
    assert not (ws / 'runs').exists()


def test_malformed_data_yaml(ws, monkeypatch, capsys):
    (ws / 'bad.yaml').write_text('train: [a\nval: b\n')
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'bad.yaml', *TRAIN)
    assert rc == 2 and 'bad.yaml: malformed YAML (line' in last
    (ws / 'nonames.yaml').write_text('train: a\nval: b\n')
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'nonames.yaml', *TRAIN)
    assert rc == 2 and 'nonames.yaml: missing names:' in last


def test_empty_image_folder(ws, monkeypatch, capsys):
    (ws / 'empty' / 'images').mkdir(parents=True)
    (ws / 'empty.yaml').write_text('path: empty\ntrain: images\nval: images\nnames: [a]\n')
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'empty.yaml', *TRAIN)
    assert rc == 2 and 'no images found for train: images' in last


def test_labels_out_of_range(ws, monkeypatch, capsys, tmp_path):
    ds = tmp_path / 'ds'
    shutil.copytree(ws / 'ds', ds)
    label = sorted((ds / 'labels' / 'train').glob('*.txt'))[0]
    label.write_text('7 0.5 0.5 0.1 0.1\n')
    data = ds / 'shapes.yaml'
    data.write_text(data.read_text().replace(str(ws / 'ds'), str(ds)))
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', data, *TRAIN)
    assert rc == 2 and last.endswith(f'{label}:1: class 7 out of range 0..4 (the data YAML has 5 names)')
    label.write_text('1 0.5 1.5 0.1 0.1\n')
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', data, *TRAIN)
    assert rc == 2 and 'coordinates must be normalised to 0..1' in last


def test_cfg_with_unknown_block(ws, monkeypatch, capsys):
    cfg = ws / 'typo.yaml'
    cfg.write_text(load_cfg_text('yolov5n-cbam').replace('[-1, 1, CBAM, []],  # 5', '[-1, 1, CBMA, []],  # 5'))
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'ds/shapes.yaml', '--cfg', cfg, '--weights', '')
    assert rc == 2 and "layer 5 (CBMA): unknown module 'CBMA'; did you mean CBAM" in last
    assert not (ws / 'runs').exists()


def load_cfg_text(name):
    from yolo_attn.config.files import resolve_cfg
    return resolve_cfg(name).read_text()


@pytest.mark.parametrize('cmd', ['train', 'val', 'detect', 'export'])
def test_weights_missing(ws, monkeypatch, capsys, cmd):
    extra = {'train': ['--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-se'], 'val': ['--data', 'ds/shapes.yaml'],
             'detect': ['--source', 'ds/images/val'], 'export': []}[cmd]
    rc, last = run(ws, monkeypatch, capsys, cmd, *extra, '--weights', 'yolov5s.pt')
    assert rc == 2 and last.startswith(f'yolo-attn {cmd}: error: weights not found: yolov5s.pt (yolo-attn never downloads')


def test_weights_truncated_or_not_a_checkpoint(ws, monkeypatch, capsys):
    data = (ws / 'ok.pt').read_bytes()
    (ws / 'cut.pt').write_bytes(data[: len(data) // 2])
    rc, last = run(ws, monkeypatch, capsys, 'val', '--data', 'ds/shapes.yaml', '--weights', 'cut.pt')
    assert rc == 2 and last.startswith('yolo-attn val: error: cut.pt: not a readable PyTorch checkpoint')
    (ws / 'text.pt').write_text('hello')
    rc, last = run(ws, monkeypatch, capsys, 'val', '--data', 'ds/shapes.yaml', '--weights', 'text.pt')
    assert rc == 2 and 'text.pt: not a readable PyTorch checkpoint' in last
    torch.save({'weights': torch.zeros(3)}, ws / 'dict.pt')
    rc, last = run(ws, monkeypatch, capsys, 'val', '--data', 'ds/shapes.yaml', '--weights', 'dict.pt')
    assert rc == 2 and 'dict.pt: not a YOLOv5 checkpoint' in last


def test_existing_run_dir_never_written_into(ws, monkeypatch, capsys):
    run_dir = ws / 'runs' / 'train' / 'keep'
    run_dir.mkdir(parents=True)
    (run_dir / 'results.csv').write_text('precious')
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'ds/shapes.yaml', *TRAIN, '--name', 'keep',
                   '--exist-ok')
    assert rc == 2 and 'already holds results and --exist-ok would write into it' in last
    assert [p.name for p in run_dir.iterdir()] == ['results.csv'] and (run_dir / 'results.csv').read_text() == 'precious'
    shutil.rmtree(ws / 'runs')


def test_resume_of_finished_run(ws, monkeypatch, capsys):
    rc, last = run(ws, monkeypatch, capsys, 'train', '--resume', 'ok.pt')
    assert rc == 2 and last.endswith('--resume ok.pt: that training is finished (its optimizer state was stripped), '
                                     'nothing to resume; start a new run with --weights ok.pt')


def test_noval_is_refused_before_it_crashes_yolov5(ws, monkeypatch, capsys):
    rc, last = run(ws, monkeypatch, capsys, 'train', '--data', 'ds/shapes.yaml', *TRAIN, '--noval')
    assert rc == 2 and 'map50s is only set when validating' in last


def test_detect_source_missing(ws, monkeypatch, capsys):
    rc, last = run(ws, monkeypatch, capsys, 'detect', '--weights', 'ok.pt', '--source', 'nowhere/*.jpg')
    assert rc == 2 and last.endswith('--source nowhere/*.jpg: no such file, folder or glob match')


def test_subprocess_error_has_no_traceback(ws):
    out = run_cli('train', '--data', 'missing.yaml', *TRAIN, cwd=ws)
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == 'yolo-attn train: error: data YAML not found: missing.yaml'
