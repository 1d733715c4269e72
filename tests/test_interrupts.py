"""Runs cut short: Ctrl-C, a full disk and a failed export end in one line and the right exit code,
and a heatmap run's manifest says honestly what was finished and what was skipped."""

import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch

from bad_input import TRAIN, make_workspace, run_in_process
from conftest import ROOT


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


SHAPES_PT = ROOT / 'yolo_attn' / 'models' / 'pretrained' / 'yolov5n-shapes.pt'  # detects on shapes images


def heatmap_cli(args, cwd, preexec_fn=None, **kwargs):
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    return subprocess.Popen([sys.executable, '-m', 'yolo_attn', 'heatmap', '--weights', SHAPES_PT, '--imgsz', '64',
                             *map(str, args)], cwd=cwd, env=env, preexec_fn=preexec_fn, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def test_full_disk_interrupt_and_unreadable_images_leave_an_honest_manifest(ws, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    for i in range(6):
        (src / f'im{i}.jpg').write_bytes((ws / 'ds' / 'images' / 'val' / '00000.jpg').read_bytes())
    (src / 'empty.jpg').write_bytes(b'')
    (src / 'a_text.png').write_text('not an image')  # sorted before the images

    def small_disk():  # files may not grow past 7 KB: each PNG fits, the manifest outgrows it at image 3
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (7000, 7000))

    p = heatmap_cli(['--source', src, '--project', tmp_path / 'full'], tmp_path, small_disk)
    _, err = p.communicate(timeout=300)
    lines = [s for s in err.replace('\r', '\n').splitlines() if s.startswith('yolo-attn')]
    manifest = json.loads((tmp_path / 'full' / 'exp' / 'heatmaps.json').read_text())
    # the file that hit the limit: the manifest, or the report page rewritten with it (the larger one)
    assert p.returncode == 2 and 'Traceback' not in err and len(lines) == 1
    assert 'heatmaps.json' in lines[0] or 'index.html' in lines[0]
    assert manifest['complete'] is False and 1 <= len(manifest['images']) < 6
    assert {pathlib.Path(s['path']).name for s in manifest['skipped']} == {'empty.jpg', 'a_text.png'}
    assert err.count('WARNING: skipping') == 2
    # Ctrl-C after the first image: the manifest says so and lists what was finished. Enough images
    # that the run cannot finish before the signal lands, even on a loaded machine.
    many = tmp_path / 'many'
    many.mkdir()
    for i in range(60):
        (many / f'im{i:02d}.jpg').write_bytes((src / 'im0.jpg').read_bytes())
    inherited = signal.getsignal(signal.SIGINT)  # a child inherits an ignored SIGINT (not a handler)
    p = heatmap_cli(['--source', many, '--project', tmp_path / 'int'], tmp_path,
                    lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a shell starts a command
    json_path, t = tmp_path / 'int' / 'exp' / 'heatmaps.json', time.time()
    while not json_path.exists() and p.poll() is None and time.time() - t < 240:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    manifest = json.loads(json_path.read_text())
    assert p.returncode == 130 and 'Traceback' not in err and manifest.get('interrupted') is True, \
        (p.returncode, len(manifest['images']), inherited, err[-1500:])
    assert manifest['complete'] is False and 1 <= len(manifest['images']) < 60


def test_a_failed_export_is_one_line_and_exit_2(ws, monkeypatch, capsys, tmp_path):
    """export.py logs "export failure" for a format and exits 0; here it is the command's one line."""
    import shutil
    shutil.copy(ws / 'ok.pt', tmp_path / 'ok.pt')

    def disk_full(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(torch.jit, 'trace', disk_full)
    rc, lines, err = run_in_process(tmp_path, monkeypatch, capsys, 'export', '--weights', 'ok.pt', '--include',
                                    'torchscript', '--imgsz', 64)
    assert rc == 2 and 'Traceback' not in err and len(lines) == 1, err[-2000:]
    assert 'TorchScript: export failure' in lines[0] and 'No space left on device' in lines[0]
    assert not (tmp_path / 'ok.torchscript').exists()


def test_ctrl_c_in_train_and_the_unsafe_opt_in_are_one_line_each(ws, monkeypatch, capsys):
    import yolov5.train
    import yolov5.utils.torch_utils  # noqa: F401  (installs yolov5's process-wide UserWarning filter)

    from yolo_attn.integration.checkpoints import UNSAFE_ENV, secure_load

    def interrupted(hyp, opt, device, callbacks):
        raise KeyboardInterrupt

    monkeypatch.setattr(yolov5.train, 'train', interrupted)
    rc, _, err = run_in_process(ws, monkeypatch, capsys, 'train', '--data', 'ds/shapes.yaml', *TRAIN, '--project',
                                'ctrlc')
    assert rc == 130 and 'Traceback' not in err and err.strip().splitlines()[-1].startswith('interrupted')
    monkeypatch.setenv(UNSAFE_ENV, '1')
    secure_load(ws / 'ok.pt')
    assert f'WARNING: {UNSAFE_ENV}=1: loading {ws / "ok.pt"} with weights_only=False' in capsys.readouterr().err
