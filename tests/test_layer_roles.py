"""``--layers`` roles (backbone, neck, detect, attention, level) resolved from each model's structure."""

import copy
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import yolov5.models.yolo as yolo
from yolo_attn import register_block
from yolo_attn.config.files import load_cfg, shipped_configs
from yolo_attn.heatmaps.layers import LayerSpecError, level_layers, resolve, roles, structure
from yolo_attn.blocks.registry import BLOCKS
from yolov5.models.common import Conv

UPSTREAM = Path(yolo.__file__).parents[1] / 'models'
STOCK = sorted(p for d in ('', 'hub', 'segment') for p in (UPSTREAM / d).glob('*.yaml') if p.name != 'anchors.yaml')

V5 = dict(backbone=[4, 6, 9], neck=[10, 14], detect=[17, 20, 23], attention=[])
P6 = dict(backbone=[4, 6, 8, 11], neck=[12, 16, 20], detect=[23, 26, 29, 32], attention=[])
V3 = dict(backbone=[6, 8, 10], neck=[14, 21], detect=[27, 22, 15], attention=[])
EXPECTED = {  # read off each YAML by hand: stage outputs the neck reads (+ SPPF), lateral neck outputs, Detect.f
    **{n: V5 for n in ('yolov5n', 'yolov5s', 'yolov5m', 'yolov5l', 'yolov5x', 'yolov5n-seg', 'yolov5s-seg',
                       'yolov5m-seg', 'yolov5l-seg', 'yolov5x-seg', 'yolov5s-LeakyReLU', 'yolov5s-ghost',
                       'yolov5s-transformer', 'yolov5-panet', 'yolov5-bifpn')},
    **{n: P6 for n in ('yolov5-p6', 'yolov5n6', 'yolov5s6', 'yolov5m6', 'yolov5l6', 'yolov5x6')},
    'yolov5-fpn': dict(backbone=[4, 6, 9], neck=[], detect=[18, 14, 10], attention=[]),
    'yolov5-p2': dict(backbone=[2, 4, 6, 9], neck=[10, 14, 18], detect=[21, 24, 27, 30], attention=[]),
    'yolov5-p34': dict(backbone=[4, 6, 9], neck=[14], detect=[17, 20], attention=[]),
    'yolov5-p7': dict(backbone=[4, 6, 8, 10, 13], neck=[14, 18, 22, 26], detect=[29, 32, 35, 38, 41], attention=[]),
    'yolov3': V3, 'yolov3-spp': V3,
    'yolov3-tiny': dict(backbone=[8, 12], neck=[14], detect=[19, 15], attention=[]),
}
ATTENDED = dict(backbone=[4, 7, 11], neck=[13, 17], detect=[20, 23, 26], attention=[5, 8, 12])


def small(d: dict) -> dict:
    """The same layers with few channels and repeats: roles depend on the wiring, not the widths."""
    d = copy.deepcopy(d)
    d.update(depth_multiple=0.33, width_multiple=0.125, nc=3)
    return d


def build(d: dict):
    act = Conv.default_act
    try:
        return yolo.Model(small(d))
    finally:
        Conv.default_act = act  # upstream's parser leaks a YAML's activation into later models


def check_invariants(model, r):
    """What every resolution must satisfy, whatever the YAML."""
    s = structure(model)
    blocks = tuple(BLOCKS.values())
    assert r['detect'] == list(model.model[-1].f)
    assert r['attention'] == [i for i, m in enumerate(model.model) if isinstance(m, blocks)]
    strides = [s.strides[i] for i in r['backbone']]
    assert strides == sorted(set(strides)), strides  # one output per stage, finest first
    assert not set(r['backbone']) & set(r['attention'])  # an attention block stands for its host
    assert max(r['backbone']) < s.backbone_end <= min(r['neck'] + r['detect'])
    for level, layers in enumerate(level_layers(model)):
        head = s.strides[r['detect'][level]]
        assert set(layers) <= set(r['backbone']) and max(s.strides[i] for i in layers) == head


@pytest.mark.parametrize('cfg', STOCK, ids=lambda p: p.stem)
def test_roles_of_every_stock_yaml(cfg, one_thread):
    model = build(load_cfg(cfg))
    r = roles(model)
    assert r == EXPECTED[cfg.stem]
    check_invariants(model, r)


@pytest.mark.parametrize('cfg', shipped_configs(), ids=lambda p: Path(p).stem)
def test_roles_of_every_shipped_attention_yaml(cfg, one_thread):
    model = build(load_cfg(cfg))
    r = roles(model)
    assert r == ATTENDED
    check_invariants(model, r)
    types = [type(model.model[i]).__name__ for i in r['backbone']]
    assert types == ['C3', 'C3', 'SPPF']  # the stock stage outputs, not the blocks after them


def test_attention_section_in_backbone_and_head(one_thread):
    d = load_cfg('yolov5s')
    d['attention'] = [{'block': 'CBAM', 'after': [4, 6, 9], 'args': []}]
    model = build(d)
    assert roles(model) == ATTENDED
    d['attention'] = [{'block': 'SimAM', 'after': [17], 'args': []}]  # on the P3 output, in the neck
    model = build(d)
    r = roles(model)
    assert r == dict(backbone=[4, 6, 9], neck=[10, 14], detect=[18, 21, 24], attention=[18])
    check_invariants(model, r)


def test_user_block(one_thread):
    @register_block(paper='test block')
    class RolesGate(nn.Module):
        def __init__(self, c1):
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1)

        def forward(self, x):
            return x * torch.sigmoid(self.conv(x))

    try:
        d = load_cfg('yolov5s')
        d['attention'] = [{'block': 'RolesGate', 'after': [6], 'args': []}]
        model = build(d)
        r = roles(model)
        assert r == dict(backbone=[4, 6, 10], neck=[11, 15], detect=[18, 21, 24], attention=[7])
        check_invariants(model, r)
    finally:
        BLOCKS.pop('RolesGate', None)


def test_resolve_combinations_indices_and_errors(one_thread):
    model = build(load_cfg('yolov5n-cbam'))
    assert resolve(model, 'backbone+detect').layers == [4, 7, 11, 20, 23, 26]
    assert resolve(model, 'backbone,17').layers == [4, 7, 11, 17]
    assert resolve(model, [4, 'attention']).layers == [4, 5, 8, 12]
    assert resolve(model, '20,23,26').layers == resolve(model, 'detect').layers == [20, 23, 26]
    level = resolve(model, 'level')
    assert level.per_level == [[4], [4, 7], [7, 11]] and level.layers == [4, 7, 11] and not level.uniform
    assert resolve(model, 'level+detect').per_level == [[4, 20, 23, 26], [4, 7, 20, 23, 26], [7, 11, 20, 23, 26]]
    assert 'P3: 4; P4: 4,7; P5: 7,11' in level.describe()
    with pytest.raises(ValueError, match="unknown role 'backbon'.*did you mean backbone"):
        resolve(model, 'backbon')
    with pytest.raises(LayerSpecError, match=r'^layers \[99\]: layer indices must be 0..26') as e:  # no CLI flag
        resolve(model, '4,99')
    assert e.value.cli_message().startswith('--layers [99]: layer indices must be 0..26')  # what the CLI prints
    with pytest.raises(LayerSpecError, match='no attention layers'):
        resolve(build(load_cfg('yolov5n')), 'attention')
