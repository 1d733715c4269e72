"""ECA, Coordinate Attention and SimAM against references computed here from the papers' definitions,
their YAML arguments, their shipped model YAMLs, and their use inside yolov5 models."""

import io
import math

import pytest
import torch
import torch.nn.functional as F

from yolo_attn import ModelConfigError
from yolo_attn.blocks import ECA, CoordAtt, SimAM
from yolo_attn.blocks.eca import eca_kernel_size
from yolo_attn.integration.checkpoints import secure_load
from yolo_attn.cli import main as cli_main
from yolo_attn.config.files import load_cfg, resolve_cfg
from yolo_attn.blocks.registry import BLOCKS
from yolo_attn.config.summary import quiet_yolov5
from yolo_attn.config.surgery import insert_blocks
from yolov5.models.yolo import Model

ZOO = [ECA, CoordAtt, SimAM]
SHAPES = [(1, 16, 1, 1), (2, 64, 7, 5), (3, 128, 20, 20), (1, 256, 3, 40), (2, 512, 10, 10)]
SHIPPED = {'eca': 'ECA', 'ca': 'CoordAtt', 'simam': 'SimAM'}


pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('block', ZOO)
def test_shape_preserved_in_train_and_eval(block, shape):
    """Batch 1 on a 1x1 map included: CoordAtt's BatchNorm still sees H + W = 2 values per channel."""
    m, x = block(shape[1]), torch.randn(shape)
    assert m.train()(x).shape == x.shape
    y = m.eval()(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_registered_and_listed(capsys):
    assert {'ECA', 'CoordAtt', 'SimAM'} <= set(BLOCKS)
    assert cli_main(['blocks']) == 0
    out = capsys.readouterr().out
    for name, venue in (('ECA', 'CVPR 2020'), ('CoordAtt', 'CVPR 2021'), ('SimAM', 'ICML 2021')):
        assert any(line.startswith(name) and venue in line for line in out.splitlines()), out


# ECA (Wang et al., CVPR 2020) ------------------------------------------------------------------

def authors_kernel_size(c, gamma=2, b=1):
    """ECA-Net's released code: truncate |(log2 C + b) / gamma|, add one when even."""
    t = int(abs((math.log(c, 2) + b) / gamma))
    return t if t % 2 else t + 1


def test_eca_kernel_is_the_papers_nearest_odd():
    sizes = (4, 8, 16, 64, 127, 128, 256, 512, 1024, 2048)
    assert [eca_kernel_size(c) for c in sizes] == [1, 3, 3, 3, 3, 5, 5, 5, 5, 7]
    for c in range(1, 5000):
        t = (math.log2(c) + 1) / 2
        k = eca_kernel_size(c)
        assert k % 2 == 1 and k == authors_kernel_size(c), c
        assert abs(k - t) <= 1 and all(abs(k - t) <= abs(o - t) for o in range(1, 20, 2)), c  # nearest odd
    assert eca_kernel_size(256, gamma=1, b=0) == 9  # t = 8, a tie between 7 and 9 goes up, as in the authors' code


@pytest.mark.parametrize('c', [16, 64, 128, 512])
def test_eca_matches_definition(c):
    torch.manual_seed(0)
    m = ECA(c).eval()
    k = eca_kernel_size(c)
    assert m.conv.kernel_size == (k,) and m.conv.bias is None
    assert sum(p.numel() for p in m.parameters()) == k
    x = torch.randn(2, c, 9, 11)
    y = x.mean((2, 3))  # (B, C) channel descriptor
    w = m.conv.weight.view(k)
    padded = F.pad(y, (k // 2, k // 2))
    z = torch.stack([(padded[:, i:i + k] * w).sum(1) for i in range(c)], 1)  # 1-D conv across channels
    torch.testing.assert_close(m(x), x * torch.sigmoid(z)[:, :, None, None], atol=1e-6, rtol=1e-5)


def test_eca_fixed_kernel_and_bad_args():
    assert ECA(512, 3).conv.kernel_size == (3,)
    assert ECA(512, None, 1, 0).conv.kernel_size == (eca_kernel_size(512, 1, 0),)
    for bad in (4, 0, -3, 2.0, True):
        with pytest.raises(ValueError, match='positive odd integer'):
            ECA(64, bad)
    with pytest.raises(ValueError, match='gamma must be a positive number'):
        ECA(64, None, 0)


# Coordinate Attention (Hou et al., CVPR 2021) ---------------------------------------------------

def coord_reference(m, x):
    """The paper's Fig. 2(c) written out: X/Y average pooling, concat, shared 1x1 conv + BN + h-swish,
    split, one 1x1 conv + sigmoid per direction, multiply."""
    b, c, h, w = x.shape
    z = torch.cat([x.mean(3), x.mean(2)], 2)  # (B, C, H + W): z^h then z^w
    f = torch.einsum('oc,bcl->bol', m.conv1.weight[:, :, 0, 0], z)
    bn = m.bn1
    f = (f - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
    f = f * bn.weight[:, None] + bn.bias[:, None]
    f = f * torch.clamp(f + 3, 0, 6) / 6  # h-swish
    g_h = torch.sigmoid(torch.einsum('oc,bcl->bol', m.conv_h.weight[:, :, 0, 0], f[:, :, :h]) + m.conv_h.bias[:, None])
    g_w = torch.sigmoid(torch.einsum('oc,bcl->bol', m.conv_w.weight[:, :, 0, 0], f[:, :, h:]) + m.conv_w.bias[:, None])
    return x * g_h[:, :, :, None] * g_w[:, :, None, :]


@pytest.mark.parametrize('c,r', [(64, 32), (128, 16), (512, 32), (16, 32)])
def test_coordatt_matches_definition(c, r):
    torch.manual_seed(0)
    m = CoordAtt(c, r)
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        m.bn1.running_mean.uniform_(-0.5, 0.5), m.bn1.running_var.uniform_(0.5, 2)
        m.bn1.weight.uniform_(0.5, 1.5), m.bn1.bias.uniform_(-0.5, 0.5)
    m.eval()
    h = max(8, c // r)
    assert m.conv1.out_channels == h and m.conv1.bias is None and m.conv_h.bias is not None
    assert sum(p.numel() for p in m.parameters()) == c * h + 2 * h + 2 * (h * c + c)
    x = torch.randn(2, c, 9, 13)
    torch.testing.assert_close(m(x), coord_reference(m, x), atol=1e-5, rtol=1e-4)


def test_coordatt_keeps_position_along_each_axis():
    """Unlike SE, the gate depends on the row and the column: a bright row changes that row's gate."""
    torch.manual_seed(0)
    m = CoordAtt(32, 4).eval()
    x = torch.rand(1, 32, 8, 8)
    gate = m(x) / x
    x2 = x.clone()
    x2[:, :, 3] += 5
    gate2 = m(x2) / x2
    assert not torch.allclose(gate[:, :, 3], gate2[:, :, 3]) and not torch.allclose(gate[:, :, 3], gate[:, :, 4])


def test_coordatt_bad_reduction():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match='reduction must be a positive integer'):
            CoordAtt(64, bad)


def test_coordatt_model_builds_with_yolov5_train_probe():
    """yolov5 builds models with a train-mode forward of a 1x3x256x256 tensor; BN over (1, h, H+W, 1) is fine."""
    with quiet_yolov5():
        model = Model(load_cfg('yolov5n-ca'))
    assert model.stride.tolist() == [8.0, 16.0, 32.0]
    block = model.model[5]
    assert isinstance(block, CoordAtt) and block.bn1.eps == 1e-3  # yolov5's initialize_weights reached it
    model.train()
    out = model(torch.rand(1, 3, 64, 64))  # batch 1, P5 map 2x2, train mode
    sum(o.sum() for o in out).backward()
    assert block.conv1.weight.grad.abs().sum() > 0


# SimAM (Yang et al., ICML 2021) ----------------------------------------------------------------

def simam_reference(x, lam):
    mu = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), keepdim=True, unbiased=True)  # sum((x - mu)^2) / (H*W - 1)
    inverse_energy = (x - mu) ** 2 / (4 * (var + lam)) + 0.5  # 1 / e_t* of the paper's eq. 5
    return x * torch.sigmoid(inverse_energy)


@pytest.mark.parametrize('lam', [1e-4, 1e-2])
def test_simam_matches_definition(lam):
    torch.manual_seed(0)
    x = torch.randn(2, 32, 9, 11) * 3
    torch.testing.assert_close(SimAM(32, lam)(x), simam_reference(x, lam), atol=1e-6, rtol=1e-5)
    assert list(SimAM(32).parameters()) == [] and SimAM(32).lam == 1e-4


def test_simam_single_pixel_and_bad_lambda():
    x = torch.randn(2, 8, 1, 1)
    torch.testing.assert_close(SimAM(8)(x), x * torch.sigmoid(torch.tensor(0.5)))
    for bad in (0, -1e-4, '1e-4', True):
        with pytest.raises(ValueError, match='lambda must be a positive number'):
            SimAM(8, bad)


# all three ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('block', ZOO)
def test_torchscript_trace(block):
    m, x = block(64).eval(), torch.randn(1, 64, 12, 10)
    traced = torch.jit.trace(m, x)
    torch.testing.assert_close(traced(x), m(x))


@pytest.mark.parametrize('row,message', [
    ([-1, 1, 'ECA', [4]], 'layer 5 (ECA): ECA kernel k must be a positive odd integer'),
    ([-1, 1, 'CoordAtt', [0]], 'layer 5 (CoordAtt): reduction must be a positive integer, got 0'),
    ([-1, 1, 'SimAM', [0]], 'layer 5 (SimAM): SimAM lambda must be a positive number, got 0'),
    ([-1, 1, 'SimAM', [1e-4, 2]], 'layer 5 (SimAM): takes (lam) after the input channels, got [0.0001, 2]'),
])
def test_bad_yaml_args_name_the_layer(row, message):
    d = load_cfg('yolov5n-cbam')
    d['backbone'][5] = row
    with pytest.raises(ModelConfigError) as e:
        Model(d)
    assert message in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('suffix', sorted(SHIPPED))
def test_shipped_yaml_is_the_surgery_of_stock(suffix):
    """models/yolov5?-{eca,ca,simam}.yaml are stock yolov5 with the block inserted after 4, 6, 9, exactly
    as `yolo-attn insert` wires it; the s model builds, has the block at 5, 8, 12 and runs."""
    block = SHIPPED[suffix]
    for size in 'nsmlx':
        shipped, stock = load_cfg(f'yolov5{size}-{suffix}'), load_cfg(f'yolov5{size}')
        assert resolve_cfg(f'yolov5{size}-{suffix}').read_text().startswith(f'# yolo-attn: YOLOv5{size} v6.0 with ')
        expected, _ = insert_blocks(stock, block, [4, 6, 9], [])
        assert shipped == expected, size
    with quiet_yolov5():
        model = Model(load_cfg(f'yolov5s-{suffix}')).eval()
    assert [type(model.model[i]).__name__ for i in (5, 8, 12)] == [block] * 3
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128))[0].shape == (1, 3 * (16 ** 2 + 8 ** 2 + 4 ** 2), 85)


def test_checkpoint_with_new_blocks_loads_weights_only():
    with quiet_yolov5():
        models = [Model(load_cfg(f'yolov5n-{s}')) for s in sorted(SHIPPED)]
    for model in models:
        buffer = io.BytesIO()
        torch.save({'model': model}, buffer)
        buffer.seek(0)
        loaded = secure_load(buffer)['model']  # torch.load(weights_only=True) with the allowlist
        assert type(loaded.model[5]) is type(model.model[5])
        theirs, ours = loaded.state_dict(), model.state_dict()
        assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
        block_keys = [k for k in ours if k.startswith('model.5.')]
        assert block_keys or not list(model.model[5].parameters())  # SimAM has no parameters
