"""Our blocks against timm's (a test-only dependency): the same weights give the same outputs.

Deliberate differences, mapped here rather than hidden:

* SE: timm's ``SEModule`` uses 1x1 convs with biases by default and ``make_divisible`` for the
  hidden width; ours is bias-free ``nn.Linear`` with ``h = max(C // r, 8)`` -> ``bias=False`` and
  ``rd_channels=h``, Linear weights reshaped to 1x1 conv weights.
* CBAM: timm's spatial half is conv + BatchNorm (``ConvNormAct``); ours is a bias-free conv alone
  (the paper has no BatchNorm there) -> timm's BatchNorm set to the identity (eps 0).
* ECA: timm clamps the adaptive kernel to at least 3; the paper's formula gives 1 below C = 8.
  Equal for C >= 8 (every YOLOv5 stage).
* CoordAtt: timm defaults to bias-free gate convs; ours keep the authors' gate biases and drop
  the bias of the conv before BatchNorm -> timm built with ``bias=True``, its first conv bias 0.
* SimAM has no timm counterpart.
"""

import pytest
import torch

from yolo_attn.blocks import CBAM, ECA, SE, CoordAtt
from yolo_attn.blocks._width import hidden_width
from yolo_attn.blocks.eca import eca_kernel_size

timm = pytest.importorskip('timm')
from timm.layers.cbam import CbamModule  # noqa: E402
from timm.layers.coord_attn import CoordAttn  # noqa: E402
from timm.layers.eca import EcaModule  # noqa: E402
from timm.layers.squeeze_excite import SEModule  # noqa: E402

CHANNELS = [16, 64, 128, 256, 512]


def as_conv(linear):
    return linear.weight.detach()[:, :, None, None]


def same_output(ours, theirs, shape, train=False):
    torch.manual_seed(1)
    x = torch.randn(shape)
    ours.train(train), theirs.train(train)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('c', CHANNELS)
def test_se_equals_timm(c):
    torch.manual_seed(0)
    ours = SE(c)
    theirs = SEModule(c, rd_channels=hidden_width(c, 16), bias=False)
    theirs.fc1.weight.data.copy_(as_conv(ours.fc1))
    theirs.fc2.weight.data.copy_(as_conv(ours.fc2))
    same_output(ours, theirs, (2, c, 9, 11))


@pytest.mark.parametrize('c,k', [(c, 7) for c in CHANNELS] + [(64, 3)])
def test_cbam_equals_timm(c, k):
    torch.manual_seed(0)
    ours = CBAM(c, 16, k)
    theirs = CbamModule(c, rd_channels=hidden_width(c, 16), spatial_kernel_size=k)
    theirs.channel.fc1.weight.data.copy_(as_conv(ours.channel.mlp[0]))
    theirs.channel.fc2.weight.data.copy_(as_conv(ours.channel.mlp[2]))
    theirs.spatial.conv.conv.weight.data.copy_(ours.spatial.conv.weight.detach())
    bn = theirs.spatial.conv.bn  # the BatchNorm the paper does not have: identity
    bn.eps = 0.0
    bn.running_mean.zero_(), bn.running_var.fill_(1), bn.weight.data.fill_(1), bn.bias.data.zero_()
    same_output(ours, theirs, (2, c, 9, 11))


@pytest.mark.parametrize('c', CHANNELS + [8, 2048])
def test_eca_equals_timm(c):
    torch.manual_seed(0)
    ours, theirs = ECA(c), EcaModule(channels=c)
    assert ours.conv.kernel_size == theirs.conv.kernel_size == (eca_kernel_size(c),)
    theirs.conv.weight.data.copy_(ours.conv.weight.detach())
    same_output(ours, theirs, (2, c, 9, 11))


def test_eca_small_channel_difference_is_the_clamp():
    assert ECA(4).conv.kernel_size == (1,) and EcaModule(channels=4).conv.kernel_size == (3,)


@pytest.mark.parametrize('c,r', [(16, 32), (64, 32), (256, 32), (512, 16)])
@pytest.mark.parametrize('train', [False, True])
def test_coordatt_equals_timm(c, r, train):
    torch.manual_seed(0)
    ours = CoordAtt(c, r)
    theirs = CoordAttn(c, rd_channels=max(8, c // r), bias=True)
    with torch.no_grad():
        ours.bn1.running_mean.uniform_(-0.5, 0.5), ours.bn1.running_var.uniform_(0.5, 2)
        ours.bn1.weight.uniform_(0.5, 1.5), ours.bn1.bias.uniform_(-0.5, 0.5)
    state = {k: v for k, v in ours.state_dict().items()}
    state['conv1.bias'] = torch.zeros(theirs.conv1.out_channels)  # ours has none: BatchNorm follows
    theirs.load_state_dict(state)  # same names otherwise: conv1, bn1, conv_h, conv_w
    same_output(ours, theirs, (2, c, 9, 13), train=train)
