"""Stock equivalence over every yolov5 YAML, and the shipped attention YAMLs and checkpoint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import yolov5.models.yolo as yolo
import yolo_attn
from yolo_attn import ModelConfigError, register_block
from yolo_attn.config.files import load_cfg, resolve_cfg, shipped_configs, shipped_dir, shipped_weights
from yolo_attn.integration.install import ORIGINAL_PARSE_MODEL
from yolov5.models.common import Conv

UPSTREAM = Path(yolo.__file__).parents[1] / 'models'
ROOT = Path(__file__).resolve().parents[1]
STOCK = sorted(p for d in ('', 'hub', 'segment') for p in (UPSTREAM / d).glob('*.yaml') if p.name != 'anchors.yaml')


def build(cfg, parse_model=None, monkeypatch=None):
    act = Conv.default_act
    if parse_model is not None:
        monkeypatch.setattr(yolo, 'parse_model', parse_model)
    try:
        model_cls = yolo.SegmentationModel if 'seg' in Path(cfg).stem else yolo.Model
        return model_cls(load_cfg(cfg))
    finally:
        Conv.default_act = act  # upstream's parser leaks a YAML's activation into later models
        if parse_model is not None:
            monkeypatch.undo()


def forward_shapes(model, size=256):
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    flat = []
    stack = [out]
    while stack:
        o = stack.pop()
        if isinstance(o, torch.Tensor):
            flat.append(tuple(o.shape))
        else:
            stack.extend(reversed(list(o)))
    return flat


def test_stock_list_is_complete():
    names = {p.stem for p in STOCK}
    assert {'yolov5s', 'yolov5n6', 'yolov5s-seg', 'yolov3-tiny', 'yolov5s-ghost', 'yolov5s-transformer'} <= names
    assert len(STOCK) == 28


@pytest.mark.parametrize('cfg', STOCK, ids=lambda p: f'{p.parent.name}/{p.stem}')
def test_stock_equivalence(cfg, monkeypatch):
    """Same layer types, parameter count and output shapes with the plugin's parser as with yolov5's."""
    torch.manual_seed(0)
    ours = build(cfg)
    torch.manual_seed(0)
    theirs = build(cfg, ORIGINAL_PARSE_MODEL['yolov5.models.yolo'], monkeypatch)
    assert [type(m) for m in ours.modules()] == [type(m) for m in theirs.modules()]
    assert [(m.i, m.f, m.type, m.np) for m in ours.model] == [(m.i, m.f, m.type, m.np) for m in theirs.model]
    assert ours.save == theirs.save
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    assert forward_shapes(ours) == forward_shapes(theirs)


SHIPPED = shipped_configs()
SUFFIX_BLOCK = {'se': 'SE', 'cbam': 'CBAM', 'eca': 'ECA', 'ca': 'CoordAtt', 'simam': 'SimAM'}


def test_shipped_set():
    """Exactly five sizes x five blocks, in the package; the repository's models/ is that folder."""
    assert sorted(p.stem for p in SHIPPED) == sorted(f'yolov5{s}-{b}' for s in 'nsmlx' for b in SUFFIX_BLOCK)
    assert all(p.parent == shipped_dir() for p in SHIPPED) and shipped_dir().parent == Path(yolo_attn.__file__).parent
    assert (ROOT / 'models').resolve() == shipped_dir().resolve()
    assert [p.name for p in shipped_weights()] == ['yolo11n-shapes.pt', 'yolov5n-shapes.pt']


FROM_ELSEWHERE = r'''
import json, sys
from pathlib import Path
import yolo_attn
from yolo_attn.cli import main
from yolo_attn.integration.checkpoints import load_checkpoint
model = yolo_attn.model('yolov5s-cbam.yaml')
out = {'model': [type(model.model[i]).__name__ for i in (5, 8, 12)],
       'cfg': str(yolo_attn.resolve_cfg('yolov5n-se')), 'weights': str(yolo_attn.resolve_weights('yolov5n-shapes.pt')),
       'names': load_checkpoint('yolov5n-shapes.pt')['model'].names}
image = sys.argv[1]
out['detect'] = main(['detect', '--weights', 'yolov5n-shapes.pt', '--source', image, '--imgsz', '64',
                      '--project', 'runs', '--name', 'det', '--nosave'])
out['heatmap'] = main(['heatmap', '--weights', 'yolov5n-shapes.pt', '--source', image, '--imgsz', '64',
                       '--project', 'runs', '--name', 'heat'])
out['missing'] = main(['heatmap', '--weights', 'nosuch.pt', '--source', image])
print('RESULT', json.dumps(out))
'''


def test_shipped_files_by_short_name_from_any_folder(tmp_path):
    """A folder with nothing of ours in it: shipped YAMLs and weights by name, in Python and the CLI."""
    import cv2
    import numpy as np
    image = tmp_path / 'im.jpg'
    cv2.imwrite(str(image), np.full((64, 64, 3), 127, np.uint8))
    out = subprocess.run([sys.executable, '-c', FROM_ELSEWHERE, str(image)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.split('RESULT ', 1)[1])
    assert got['model'] == ['CBAM'] * 3
    assert Path(got['cfg']) == shipped_dir() / 'yolov5n-se.yaml'
    assert Path(got['weights']) == shipped_dir() / 'pretrained' / 'yolov5n-shapes.pt'
    assert sorted(got['names'].values()) == sorted(['circle', 'square', 'triangle', 'star', 'cross'])
    assert got['detect'] == 0 and got['heatmap'] == 0 and (tmp_path / 'runs' / 'heat' / 'heatmaps.json').is_file()
    assert got['missing'] == 2
    assert 'weights not found: nosuch.pt' in out.stderr and 'yolov5n-shapes.pt' in out.stderr  # names the shipped


def test_not_found_names_the_shipped_configs():
    with pytest.raises(ModelConfigError, match=r'model YAML not found: nothing-like-it.*yolov5l-ca'):
        resolve_cfg('nothing-like-it')


def test_a_non_editable_install_carries_the_package_data(tmp_path):
    """``pip install --target`` from a copy of the source (no editable link back to this checkout)."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.cfg', 'pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / 'yolo_attn', src / 'yolo_attn', ignore=shutil.ignore_patterns('__pycache__'))
    target = tmp_path / 'target'
    out = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--no-index',
                          '-q', '--target', str(target), str(src)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    installed = target / 'yolo_attn' / 'models'
    assert sorted(p.name for p in installed.glob('*.yaml')) == sorted(p.name for p in SHIPPED)
    for weights in shipped_weights():  # yolo11n-shapes.pt, yolov5n-shapes.pt
        assert (installed / 'pretrained' / weights.name).read_bytes() == weights.read_bytes()
    probe = 'import yolo_attn.config.files as f; print(f.shipped_dir())'
    found = subprocess.run([sys.executable, '-c', probe], cwd=tmp_path, capture_output=True, text=True,
                           env={**os.environ, 'PYTHONPATH': str(target)}, timeout=120)
    assert Path(found.stdout.strip()) == installed, found.stderr[-2000:]


@pytest.mark.parametrize('cfg', SHIPPED, ids=lambda p: p.stem)
def test_shipped_yaml_builds_and_runs(cfg):
    model = build(cfg).eval()
    block = SUFFIX_BLOCK[cfg.stem.split('-', 1)[1]]
    assert [type(model.model[i]).__name__ for i in (5, 8, 12)] == [block] * 3
    assert cfg.read_text().startswith('# yolo-attn:') and 'Where the blocks sit' in cfg.read_text()
    for size in (320, 640):
        with torch.no_grad():
            pred = model(torch.zeros(1, 3, size, size))[0]
        assert pred.shape == (1, 3 * sum((size // s) ** 2 for s in (8, 16, 32)), 85)


@register_block
class PassThrough(nn.Module):
    """Identity with the block contract: used to prove the shipped YAMLs' head wiring."""

    def __init__(self, c1, *args):
        super().__init__()

    def forward(self, x):
        return x


@pytest.mark.parametrize('size', 'nsmlx')
def test_shipped_head_wiring_equals_stock(size):
    """Replace the blocks by identities: with the stock weights moved to their new indices, the
    network computes exactly what stock yolov5 computes, so every `from` index was rewired right."""
    d = load_cfg(f'yolov5{size}-cbam')
    d['backbone'] = [[f, n, 'PassThrough' if m == 'CBAM' else m, a] for f, n, m, a in d['backbone']]
    torch.manual_seed(0)
    ours, stock = yolo.Model(d).eval(), yolo.Model(load_cfg(f'yolov5{size}')).eval()
    new_index = [i + (i >= 5) + (i >= 7) + (i >= 10) for i in range(len(stock.model))]
    sd = {}
    for k, v in stock.state_dict().items():
        parts = k.split('.')
        parts[1] = str(new_index[int(parts[1])])
        sd['.'.join(parts)] = v
    ours.load_state_dict(sd)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0], stock(x)[0], atol=0, rtol=0)


def test_torchscript_trace_of_attention_model():
    model = build(resolve_cfg('yolov5n-cbam')).eval()
    model.model[-1].export = True  # yolov5's export mode: one output tensor
    x = torch.rand(1, 3, 160, 160)
    model(x)  # dry run builds the grids, as yolov5's export does before tracing
    traced = torch.jit.trace(model, x, strict=False)
    torch.testing.assert_close(traced(x)[0], model(x)[0])


def test_short_names_resolve_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_cfg('yolov5s-cbam').parent == SHIPPED[0].parent
    assert resolve_cfg('yolov5s-cbam.yaml') == resolve_cfg('yolov5s-cbam')
    assert resolve_cfg('yolov5s') == UPSTREAM / 'yolov5s.yaml'
    assert resolve_cfg('yolov5n6') == UPSTREAM / 'hub' / 'yolov5n6.yaml'
    assert resolve_cfg('yolov5m-seg') == UPSTREAM / 'segment' / 'yolov5m-seg.yaml'
    with pytest.raises(ModelConfigError, match='not found: yolov5s-cbma; did you mean yolov5s-cbam'):
        resolve_cfg('yolov5s-cbma')


def test_malformed_yaml_names_line(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('nc: 80\nbackbone: [[-1, 1, Conv, [64]]\nhead: [\n')
    with pytest.raises(ModelConfigError, match=r'bad.yaml: malformed YAML \(line \d+, column \d+\)'):
        load_cfg(bad)
    bad.write_text('- just\n- a list\n')
    with pytest.raises(ModelConfigError, match='not a YOLOv5 model YAML'):
        load_cfg(bad)
