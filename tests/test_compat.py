"""Each compat fix, with a test that fails without it."""

import importlib.metadata
import os
import pickle
import subprocess
import sys
import zipfile
from copy import deepcopy

import numpy as np
import pytest
import torch

import yolov5.utils.general as general
import yolov5.utils.plots as plots
from yolo_attn.config.files import load_cfg
from yolov5.models.yolo import Model


def test_setuptools_pin_keeps_pkg_resources():
    major = int(importlib.metadata.version('setuptools').split('.')[0])
    assert major < 81, 'setuptools>=81 removed pkg_resources, which yolov5 7.0.14 imports'
    import pkg_resources  # noqa: F401


def test_missing_pkg_resources_is_one_clear_line():
    code = "import sys; sys.modules['pkg_resources'] = None; import yolo_attn; yolo_attn.activate()"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('RuntimeError: yolov5 7.0.14 needs pkg_resources') and "'setuptools<81'" in last


def test_compute_ap_works_on_numpy_without_trapz():
    from yolov5.utils.metrics import compute_ap
    assert not hasattr(np, 'trapz') or np.__version__ < '2.4'  # the condition the fix is for
    recall = np.array([0.0, 0.5, 1.0])
    precision = np.array([1.0, 1.0, 0.5])
    ap, _, _ = compute_ap(recall, precision)
    assert 0.85 < ap < 0.95
    assert not hasattr(np, 'trapz') or np.__version__ < '2.4'  # the global numpy is left alone


@pytest.fixture
def no_downloads(monkeypatch, tmp_path):
    """An empty yolov5 config dir (no Arial.ttf) and a downloader that fails the test if called."""
    calls = []
    monkeypatch.setattr(general, 'CONFIG_DIR', tmp_path)
    monkeypatch.setattr(plots, 'CONFIG_DIR', tmp_path)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', lambda *a, **k: calls.append(a))
    yield calls
    assert not calls, f'a font download was attempted: {calls}'
    assert list(tmp_path.iterdir()) == []


def test_annotator_fonts_never_download(no_downloads):
    from PIL import ImageFont
    font = plots.check_pil_font('Arial.ttf', 12)
    assert isinstance(font, ImageFont.FreeTypeFont)
    im = np.zeros((64, 64, 3), np.uint8)
    annotator = plots.Annotator(im, pil=True)
    annotator.box_label([5, 5, 40, 40], 'circle 0.91', color=(255, 0, 0))
    assert annotator.result().any()


def test_check_dataset_never_downloads_font(no_downloads, tmp_path_factory):
    root = tmp_path_factory.mktemp('ds')
    (root / 'images').mkdir()
    data = root / 'd.yaml'
    data.write_text(f'path: {root}\ntrain: images\nval: images\nnames:\n  0: a\n')
    d = general.check_dataset(str(data))
    assert d['nc'] == 1


def yolov5_checkpoint(model):
    """What yolov5's train.py saves (numpy scalar fitness, optimizer state, opt dict)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return {'epoch': 0, 'best_fitness': np.float64(0.5), 'model': deepcopy(model).half(),
            'ema': deepcopy(model).half(), 'updates': 3, 'optimizer': opt.state_dict(),
            'opt': {'imgsz': 320, 'hyp': {'lr0': 0.01}}, 'git': None, 'date': '2026-11-25T00:00:00'}


@pytest.mark.parametrize('cfg', ['yolov5n', 'yolov5n-cbam', 'yolov5n-se'])
def test_checkpoints_load_with_weights_only_default(tmp_path, cfg):
    from yolov5.models.experimental import attempt_load
    model = Model(load_cfg(cfg))
    f = tmp_path / 'last.pt'
    torch.save(yolov5_checkpoint(model), f)
    ckpt = torch.load(f, map_location='cpu')  # torch>=2.6 default: weights_only=True
    assert type(ckpt['model']) is type(model) and ckpt['best_fitness'] == 0.5
    general.strip_optimizer(f)  # yolov5's end-of-training step loads it the same way
    loaded = attempt_load(f, fuse=False)
    assert [type(m) for m in loaded.model] == [type(m) for m in model.model]


def as_upstream_checkpoint(src, dst):
    """Rewrite a checkpoint's pickled class paths the way upstream YOLOv5 writes them
    (``models.yolo.DetectionModel``, ``models.common.Conv``: its repo root is on sys.path)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith('data.pkl'):
                assert b'cyolov5.models.common\n' in data  # GLOBAL opcodes ('c' module '\\n' name)
                data = data.replace(b'cyolov5.models.', b'cmodels.')
            zout.writestr(item, data)


def test_upstream_checkpoint_names_load(tmp_path):
    model = Model(load_cfg('yolov5n')).eval()
    torch.save({'model': deepcopy(model).half()}, tmp_path / 'ours.pt')
    as_upstream_checkpoint(tmp_path / 'ours.pt', tmp_path / 'upstream.pt')
    assert b'cyolov5.models' not in (tmp_path / 'upstream.pt').read_bytes()
    ckpt = torch.load(tmp_path / 'upstream.pt', map_location='cpu')
    loaded = ckpt['model'].float().eval()
    assert type(loaded) is type(model) and type(loaded.model[0]) is type(model.model[0])
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(loaded(x)[0], model.half().float()(x)[0])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / 'pwned'
    f = tmp_path / 'evil.pt'
    torch.save({'model': _Payload(marker)}, f)
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(f, map_location='cpu')
    assert not marker.exists()


def test_label_scan_runs_in_threads_not_a_forked_pool(tmp_path, monkeypatch):
    """yolov5's label scan used a forking multiprocessing.Pool: a fork of a process that runs threads
    can deadlock (it hung the test suite). The plugin gives it a ThreadPool; a scan with workers
    forks nothing."""
    import os
    from multiprocessing.pool import ThreadPool

    import yolov5.utils.dataloaders as loaders
    from yolo_attn.data.shapes import generate_shapes
    assert loaders.Pool is ThreadPool
    generate_shapes(tmp_path / 'shapes', n_train=3, n_val=1, imgsz=64, seed=0, progress=False)

    def no_fork(*args, **kwargs):
        raise AssertionError('the label scan forked')

    monkeypatch.setattr(os, 'fork', no_fork)
    data = loaders.LoadImagesAndLabels(str(tmp_path / 'shapes' / 'images' / 'train'), img_size=64, workers=2)
    assert len(data.labels) == 3 and all(len(lb) for lb in data.labels)
