"""The plugin's parse_model: registration, channel supply, safety, and one-line errors."""

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import yaml

import yolo_attn
from yolo_attn import ModelConfigError, register_block
from yolo_attn.config.files import load_cfg
from yolo_attn.integration.install import install
from yolo_attn.blocks.registry import BLOCKS
from yolov5.models.yolo import Model


def cfg_with(name='yolov5s-cbam', layer=None, row=None, **top):
    d = copy.deepcopy(load_cfg(name))
    if layer is not None:
        rows = d['backbone'] + d['head']
        rows[layer] = row
        nb = len(d['backbone'])
        d['backbone'], d['head'] = rows[:nb], rows[nb:]
    d.update(top)
    return d


def test_blocks_get_input_channels_with_width_multiple():
    m = Model(load_cfg('yolov5s-cbam'))
    # yolov5s (width 0.5): P3/P4/P5 stages have 128/256/512 channels
    for i, c in ((5, 128), (8, 256), (12, 512)):
        block = m.model[i]
        assert block.type == 'yolo_attn.blocks.cbam.CBAM'
        assert block.channel.mlp[0].in_features == c
    n = Model(load_cfg('yolov5n-se'))
    assert [n.model[i].fc1.in_features for i in (5, 8, 12)] == [64, 128, 256]


def test_reduction_and_kernel_args_are_passed():
    d = cfg_with(layer=5, row=[-1, 1, 'CBAM', [8, 3]])
    m = Model(d)
    assert m.model[5].channel.mlp[0].out_features == 128 // 8
    assert m.model[5].spatial.conv.kernel_size == (3, 3)


def test_install_is_idempotent():
    import yolov5.models.yolo as yolo
    before = yolo.parse_model
    install()
    yolo_attn.activate()
    assert yolo.parse_model is before and before._yolo_attn


def test_both_module_names_see_the_registration():
    import models.yolo as alias  # yolov5's second import name (its folder is on sys.path)
    import yolov5.models.yolo as canonical
    assert alias is not canonical
    assert alias.parse_model._yolo_attn and canonical.parse_model._yolo_attn
    m = alias.Model(load_cfg('yolov5n-cbam'))
    assert isinstance(m.model[-1], alias.Detect) and m.stride.tolist() == [8.0, 16.0, 32.0]
    assert type(m.model[5]).__name__ == 'CBAM'


def test_alias_imported_before_plugin_is_patched_too(tmp_path):
    code = ('import yolov5.models.yolo, models.yolo, yolo_attn\n'
            'from yolo_attn.config.files import load_cfg\n'
            'm = models.yolo.Model(load_cfg("yolov5n-se"))\n'
            'print(type(m.model[5]).__name__, m.stride.tolist())')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'SE [8.0, 16.0, 32.0]'


def test_user_block_via_register_block():
    @register_block(paper='test block')
    class HalfGate(nn.Module):
        def __init__(self, c1, scale=0.5):
            super().__init__()
            self.c1, self.scale = c1, scale

        def forward(self, x):
            return x * self.scale

    try:
        assert register_block(HalfGate) is HalfGate  # idempotent for the same class
        m = Model(cfg_with(layer=5, row=[-1, 1, 'HalfGate', [0.25]]))
        assert m.model[5].c1 == 128 and m.model[5].scale == 0.25
        with pytest.raises(ValueError, match='already registered'):
            register_block(name='HalfGate')(type('HalfGate', (nn.Module,), {}))
        with pytest.raises(ValueError, match='already a YOLOv5 module'):
            register_block(name='C3')(HalfGate)
    finally:
        BLOCKS.pop('HalfGate', None)


def test_block_that_changes_shape_is_refused():
    @register_block
    class Shrink(nn.Module):
        def __init__(self, c1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c1 // 2, 1)

        def forward(self, x):
            return self.conv(x)

    try:
        with pytest.raises(ModelConfigError, match=r'layer 5 \(Shrink\): .*preserve its input shape'):
            Model(cfg_with(layer=5, row=[-1, 1, 'Shrink', []]))
    finally:
        BLOCKS.pop('Shrink', None)


@pytest.mark.parametrize('payload', [
    "__import__('os').system('touch {marker}')",
    "exec(\"open('{marker}','w')\")",
    "open('{marker}', 'w')",
    "nn.Module.__subclasses__()",
    "(lambda: open('{marker}', 'w'))()",
])
@pytest.mark.parametrize('where', ['module', 'arg', 'activation'])
def test_expressions_in_yaml_are_refused_and_nothing_runs(tmp_path, payload, where):
    marker = tmp_path / 'marker'
    expr = payload.format(marker=marker)
    if where == 'module':
        d = cfg_with(layer=5, row=[-1, 1, expr, []])
    elif where == 'arg':
        d = cfg_with(layer=5, row=[-1, 1, 'CBAM', [expr]])
    else:
        d = cfg_with(activation=expr)
    with pytest.raises(ModelConfigError) as e:
        Model(d)
    assert ('layer 5' in str(e.value)) if where != 'activation' else str(e.value).startswith('activation')
    assert not marker.exists()


def test_allowed_symbols_evaluate():
    d = cfg_with('yolov5s', activation='nn.LeakyReLU(0.1)')
    m = Model(d)
    assert isinstance(m.model[0].act, nn.LeakyReLU) and m.model[0].act.negative_slope == 0.1
    from yolov5.models.common import Conv
    assert not isinstance(Conv.default_act, nn.LeakyReLU)  # not leaked into the next model
    d = cfg_with('yolov5s', layer=24, row=[[17, 20, 23], 1, 'Detect', ['nc', 'anchors']], nc=3)
    assert Model(d).model[-1].nc == 3


@pytest.mark.parametrize('row,match', [
    ([-1, 1, 'CBMA', []], r"layer 5 \(CBMA\): unknown module 'CBMA'; did you mean CBAM"),
    ([-1, 1, 'CBAM', [16, 7, 3]], r'layer 5 \(CBAM\): takes \(r, k\) after the input channels, got \[16, 7, 3\]'),
    ([-1, 1, 'SE', ['sixteen']], r"layer 5 \(SE\): reduction must be a positive integer, got 'sixteen'"),
    ([-1, 1, 'CBAM', [16, 4]], r'layer 5 \(CBAM\): spatial kernel k must be a positive odd integer'),
    ([30, 1, 'CBAM', []], r"layer 5 \(CBAM\): 'from' index 30 is out of range"),
    ([-9, 1, 'CBAM', []], r"layer 5 \(CBAM\): 'from' index -9 is out of range"),
    ([-1, 1, 'CBAM'], r'layer 5: expected \[from, number, module, \[args\]\]'),
    ([-1, 0, 'CBAM', []], r'layer 5 \(CBAM\): number of repeats must be a positive integer'),
])
def test_bad_rows_get_one_clear_line(row, match):
    with pytest.raises(ModelConfigError, match=match) as e:
        Model(cfg_with(layer=5, row=row))
    assert '\n' not in str(e.value)


def test_channel_count_written_as_reduction_is_explained():
    # yolov5s P5 has 512 channels; a hand-edited fork's [1024] means "1024 channels"
    with pytest.raises(ModelConfigError, match=r'layer 12 \(CBAM\): reduction 1024 on 512 channels leaves no '
                                               r'hidden units .*rows carry no channel counts here'):
        Model(cfg_with(layer=12, row=[-1, 1, 'CBAM', [1024]]))


def test_missing_key_and_non_list_rows():
    d = cfg_with()
    del d['anchors']
    with pytest.raises(ModelConfigError, match="no 'anchors' key"):
        Model(d)


def test_registered_block_survives_yaml_roundtrip(tmp_path):
    path = tmp_path / 'custom.yaml'
    path.write_text(yaml.safe_dump(cfg_with('yolov5n-se')))
    m = Model(str(path))  # yolov5's own path-based constructor
    assert type(m.model[8]).__name__ == 'SE'
    assert m(torch.zeros(1, 3, 64, 64))[0].shape[0] == 1


def test_a_block_registered_before_yolov5_is_checked_when_yolov5_arrives(tmp_path):
    """register_block no longer imports yolov5 (ultralytics users pay nothing for it); a name yolov5
    uses is refused at yolov5's first import instead."""
    import subprocess
    import sys
    code = ('import sys, torch.nn as nn\nfrom yolo_attn.blocks.registry import register_block\n'
            'class C3(nn.Module):\n    def forward(self, x):\n        return x\n'
            'register_block(C3)\nassert "yolov5" not in sys.modules\n'
            'try:\n    import yolov5.models.yolo\nexcept ValueError as e:\n    print("REFUSED", e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "REFUSED block name 'C3' is already a YOLOv5 module" in out.stdout
