"""SE and CBAM against references computed here from the papers' definitions."""

import pytest
import torch
import torch.nn.functional as F

from yolo_attn.blocks import CBAM, SE, ChannelAttention, SpatialAttention
from yolo_attn.blocks.coord import CoordAtt
from yolo_attn.blocks.eca import ECA
from yolo_attn.blocks.simam import SimAM
from yolo_attn.blocks._width import hidden_width

SHAPES = [(1, 16, 1, 1), (2, 64, 7, 5), (3, 128, 20, 20), (1, 256, 3, 40), (2, 512, 10, 10)]


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('block', [SE, CBAM])
def test_shape_preserved(block, shape):
    x = torch.randn(shape)
    assert block(shape[1])(x).shape == x.shape


def se_reference(x, w1, w2):
    s = x.mean(dim=(2, 3))  # squeeze
    s = torch.sigmoid(F.linear(F.relu(F.linear(s, w1)), w2))  # excite
    return x * s.view(*s.shape, 1, 1)


def cbam_reference(x, w1, w2, wconv, k):
    mlp = lambda v: F.linear(F.relu(F.linear(v, w1)), w2)
    avg, mx = x.flatten(2).mean(-1), x.flatten(2).max(-1).values
    x = x * torch.sigmoid(mlp(avg) + mlp(mx)).view(x.shape[0], -1, 1, 1)
    maps = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], 1)  # mean first, then max
    return x * torch.sigmoid(F.conv2d(maps, wconv, padding=k // 2))


@pytest.mark.parametrize('c,r', [(64, 16), (128, 8), (32, 4)])
def test_se_matches_definition(c, r):
    torch.manual_seed(0)
    m = SE(c, r).eval()
    x = torch.randn(2, c, 9, 11)
    torch.testing.assert_close(m(x), se_reference(x, m.fc1.weight, m.fc2.weight), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('c,r,k', [(64, 16, 7), (128, 8, 3), (32, 4, 5)])
def test_cbam_matches_definition(c, r, k):
    torch.manual_seed(0)
    m = CBAM(c, r, k).eval()
    x = torch.randn(2, c, 9, 11)
    ref = cbam_reference(x, m.channel.mlp[0].weight, m.channel.mlp[2].weight, m.spatial.conv.weight, k)
    torch.testing.assert_close(m(x), ref, atol=1e-6, rtol=1e-5)


def test_cbam_is_channel_then_spatial():
    torch.manual_seed(0)
    m, x = CBAM(64), torch.randn(1, 64, 8, 8)
    torch.testing.assert_close(m(x), m.spatial(m.channel(x)))
    assert not torch.allclose(m(x), m.channel(m.spatial(x)))


@pytest.mark.parametrize('c,r', [(64, 16), (256, 16), (512, 32), (1024, 16)])
def test_parameter_count_is_analytic(c, r):
    h = hidden_width(c, r)
    assert sum(p.numel() for p in SE(c, r).parameters()) == 2 * c * h
    assert sum(p.numel() for p in ChannelAttention(c, r).parameters()) == 2 * c * h
    assert sum(p.numel() for p in SpatialAttention(7).parameters()) == 2 * 7 * 7
    assert sum(p.numel() for p in CBAM(c, r, 7).parameters()) == 2 * c * h + 2 * 7 * 7


def test_hidden_width_rule():
    assert hidden_width(1024, 16) == 64
    assert hidden_width(256, 16) == 16
    assert hidden_width(64, 16) == 8  # yolov5n's 64-channel stage: floor of 8, not 4
    assert hidden_width(16, 16) == 8
    assert hidden_width(8, 4) == 8  # never more than C
    assert hidden_width(4, 2) == 4
    with pytest.raises(ValueError, match='no hidden units'):
        hidden_width(512, 1024)
    for bad in (0, -1, 2.5, True, '16'):
        with pytest.raises(ValueError, match='positive integer'):
            hidden_width(64, bad)


def test_cbam_refuses_even_kernel():
    with pytest.raises(ValueError, match='odd'):
        CBAM(64, 16, 4)


@pytest.mark.parametrize('block', [SE, CBAM, ECA, CoordAtt, SimAM])
def test_gradients_reach_input_and_every_parameter(block):
    torch.manual_seed(0)
    m = block(64)
    x = torch.randn(2, 64, 8, 8, requires_grad=True)
    m(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('block', [SE, CBAM])
def test_torchscript_trace(block):
    m, x = block(64).eval(), torch.randn(1, 64, 12, 12)
    traced = torch.jit.trace(m, x)
    torch.testing.assert_close(traced(x), m(x))
