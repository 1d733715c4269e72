"""YAML surgery on ultralytics model YAMLs: ``yolo-attn insert`` and the ``attention:`` section rewire
yolov8/yolo11/yolo26 heads (``scales:`` kept), and an inserted identity block changes nothing: with the
stock weights moved by layer correspondence, the outputs are the stock model's exactly."""

import copy
import importlib.util
import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from yolo_attn.blocks.registry import BLOCKS, register_block
from yolo_attn.config.backend import ULTRALYTICS, backend_of, build
from yolo_attn.config.surgery import expand_attention, insert_blocks
from yolo_attn.config.transfer import intersect_by_correspondence

MODELS = Path(importlib.util.find_spec('ultralytics').origin).parent / 'cfg' / 'models'
STOCK = {'yolov8': MODELS / 'v8' / 'yolov8.yaml', 'yolo11': MODELS / '11' / 'yolo11.yaml',
         'yolo26': MODELS / '26' / 'yolo26.yaml'}
HOSTS = {'yolov8': [4, 6, 9], 'yolo11': [4, 6, 10], 'yolo26': [4, 6, 10]}  # P3, P4, P5 stage outputs


@pytest.fixture(scope='module', autouse=True)
def offline(tmp_path_factory):
    os.environ.setdefault('YOLO_CONFIG_DIR', str(tmp_path_factory.mktemp('ultralytics_config')))
    os.environ.setdefault('YOLO_OFFLINE', '1')


@pytest.fixture(scope='module')
def passthrough():
    """A registered block that returns its input: inserting it must leave the network's function alone."""
    class PassThroughProbe(nn.Module):
        def __init__(self, c1):
            super().__init__()
            self.c1 = c1

        def forward(self, x):
            assert x.shape[1] == self.c1
            return x

    register_block(PassThroughProbe)
    yield 'PassThroughProbe'
    BLOCKS.pop('PassThroughProbe', None)


def stock(name):
    return yaml.safe_load(STOCK[name].read_text())


def outputs(model, x):
    with torch.no_grad():
        y = model(x)
    y = y[0] if isinstance(y, (list, tuple)) else y
    return y if torch.is_tensor(y) else torch.cat([t.flatten() for t in y.values()])


@pytest.mark.parametrize('name', list(STOCK))
def test_inserting_an_identity_block_changes_nothing(name, passthrough):
    d = stock(name)
    assert backend_of(d) == ULTRALYTICS
    new, mapping = insert_blocks(d, passthrough, HOSTS[name])
    assert new['scales'] == d['scales'] and len(new['backbone']) + len(new['head']) == \
        len(d['backbone']) + len(d['head']) + 3
    torch.manual_seed(0)
    src = build(d, nc=3, scale='n')
    torch.manual_seed(1)
    dst = build(new, nc=3, scale='n')
    kept, _ = intersect_by_correspondence(src.state_dict(), dst.state_dict(), d, new)
    assert len(kept) == len(src.state_dict())  # every stock tensor found its layer
    dst.load_state_dict(kept, strict=False)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(outputs(dst, x), outputs(src, x))


@pytest.mark.parametrize('name', ['yolo11', 'yolo26'])
def test_attention_section_builds_the_same_model_as_inserted_rows(name):
    d = stock(name)
    section = {**copy.deepcopy(d), 'attention': [{'block': 'CBAM', 'after': HOSTS[name], 'args': [16, 7]}]}
    rows, _ = insert_blocks(d, 'CBAM', HOSTS[name], [16, 7])
    assert expand_attention(section)['head'] == rows['head']
    torch.manual_seed(0)
    a = build(section, nc=3, scale='n')
    torch.manual_seed(0)
    b = build(rows, nc=3, scale='n')
    assert [type(m).__name__ for m in a.model] == [type(m).__name__ for m in b.model]
    assert 'attention' in a.yaml  # the model keeps what was written
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(outputs(a, x), outputs(b, x))


def test_insert_command_on_an_ultralytics_yaml_by_path(tmp_path, cli):
    (tmp_path / 'yolo11.yaml').write_text(STOCK['yolo11'].read_text())
    out = cli('insert', '--cfg', './yolo11.yaml', '--block', 'SE', '--after', '4,6,10', '-o', 'yolo11-se.yaml',
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'new layers 5, 8, 13' in out.stdout
    d = yaml.safe_load((tmp_path / 'yolo11-se.yaml').read_text())
    assert [r[2] for r in d['backbone'] if r[2] == 'SE'] == ['SE'] * 3 and 'scales' in d


def test_shipped_ultralytics_yamls_are_in_sync_with_the_generator():
    """models/ultralytics/ is what tools/ultralytics_attention_yamls.py makes from the installed stock YAMLs."""
    import subprocess
    import sys
    from conftest import ROOT
    out = subprocess.run([sys.executable, str(ROOT / 'tools' / 'ultralytics_attention_yamls.py'), '--check'],
                         capture_output=True, text=True, timeout=600, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert '15 of 15 shipped ultralytics YAMLs up to date' in out.stdout


@pytest.mark.parametrize('name, block, rows', [('yolo11n-cbam.yaml', 'CBAM', [5, 8, 13]),
                                               ('yolov8s-se.yaml', 'SE', [5, 8, 12]),
                                               ('yolo26n-simam.yaml', 'SimAM', [5, 8, 13])])
def test_ultralytics_finds_a_shipped_yaml_by_short_name(tmp_path, name, block, rows):
    """``YOLO('yolo11n-cbam.yaml')`` as an ultralytics user types it, from another folder, after import yolo_attn."""
    import subprocess
    import sys
    code = (f"import yolo_attn\nfrom ultralytics import YOLO\nm = YOLO({name!r}).model\n"
            f"print('RESULT', m.yaml['scale'], [i for i, l in enumerate(m.model) if type(l).__name__ == {block!r}])")
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path), 'YOLO_OFFLINE': '1', 'OMP_NUM_THREADS': '1'}
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split('RESULT')[-1].strip().split(None, 1) == [name[len(name.split('-')[0]) - 1], str(rows)]


def test_our_short_names_resolve_for_yolo_attn_commands():
    from yolo_attn.config.files import resolve_cfg
    assert resolve_cfg('yolo26-se').parent.name == 'ultralytics'


@pytest.mark.parametrize('name', ['yolo11', 'yolov8'])
def test_load_moves_every_stock_tensor_into_an_attention_yaml(name):
    """``model.load(stock)`` (ultralytics' pretrained path) fills every layer that has a partner;
    ultralytics' own matching by index loses the layers after the first inserted row."""
    from ultralytics.nn import tasks

    from yolo_attn.config.transfer import layer_correspondence
    d = stock(name)
    new, _ = insert_blocks(d, 'CBAM', HOSTS[name], [16, 7])
    torch.manual_seed(0)
    src, dst, plain = build(d, nc=3, scale='n'), build(new, nc=3, scale='n'), build(new, nc=3, scale='n')
    dst.load({'model': src}, verbose=False)
    tasks.BaseModel.load.__wrapped__(plain, {'model': src}, verbose=False)  # ultralytics' own
    mapping, sd = layer_correspondence(d, new), src.state_dict()
    pairs = {f"model.{mapping[int(k.split('.')[1])]}.{k.split('.', 2)[2]}": k for k in sd
             if k.startswith('model.') and k.endswith('conv.weight')}  # random at init: equal only if moved
    moved = sum(torch.equal(dst.state_dict()[t], sd[s]) for t, s in pairs.items())
    by_index = sum(torch.equal(plain.state_dict()[t], sd[s]) for t, s in pairs.items())
    assert moved == len(pairs) and by_index < len(pairs) / 2


def test_load_starts_new_blocks_as_the_identity():
    """After ``load(stock)`` the attention model computes the stock model exactly (blend 0); the
    trainer then ramps the blend to the papers' formulas (``ultralytics.attn_start``)."""
    from yolo_attn.blocks.start import blend_of
    d = stock('yolo11')
    new, _ = insert_blocks(d, 'CBAM', HOSTS['yolo11'], [16, 7])
    torch.manual_seed(0)
    src, dst = build(d, nc=3, scale='n'), build(new, nc=3, scale='n')
    dst.load({'model': src}, verbose=False)
    assert [blend_of(m) for m in dst.model if blend_of(m) is not None] == [0.0] * 3
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(outputs(dst, x), outputs(src, x))
