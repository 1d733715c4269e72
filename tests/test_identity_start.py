"""Identity start (``yolo_attn.blocks.start``, ``integration.attn_start``): blocks new to a trained
model start as the identity; the paper formula stays bit-exact without the residual scale; export,
secure loading and old checkpoints keep working; ``yolo-attn train`` logs the epoch-0 validation."""

import pytest
import torch
import torch.nn as nn

from conftest import run_cli
from test_transfer import trained_stock_model
from yolo_attn.blocks import CBAM, ECA, SE, CoordAtt, SimAM
from yolo_attn.config.files import load_cfg
from yolo_attn.config.surgery import insert_blocks
from yolo_attn.config.transfer import intersect_by_correspondence
from yolo_attn.blocks.start import GAMMA, apply_identity_start, has_identity_start, start_as_identity
from yolo_attn.integration import attn_start
from yolo_attn.integration.checkpoints import load_checkpoint
from yolo_attn.blocks.registry import BLOCKS, register_block
from yolov5.models.yolo import Model

BLOCK_CLASSES = [SE, CBAM, ECA, CoordAtt, SimAM]
CFGS = {'yolov5n-se': 'SE', 'yolov5n-cbam': 'CBAM', 'yolov5n-eca': 'ECA', 'yolov5n-ca': 'CoordAtt',
        'yolov5n-simam': 'SimAM'}
INSERTED = [5, 8, 12]  # where the shipped yolov5n-<block> YAMLs insert their blocks


def random_block(cls, c=64):
    """A block with non-trivial weights (and CoordAtt's BatchNorm statistics)."""
    torch.manual_seed(1)
    m = cls(c)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.5)
        for name, b in m.named_buffers():
            if name.endswith('running_var'):
                b.uniform_(0.5, 2)
            elif name.endswith('running_mean'):
                b.normal_(0, 0.3)
    return m.eval()


@pytest.fixture(scope='module')
def stock():
    return trained_stock_model(steps=1).eval()


def transferred(stock, cfg, mode):
    """What ``yolo-attn train --weights stock.pt --cfg cfg --attn-start mode`` builds before its first step."""
    torch.manual_seed(0)
    target = Model(load_cfg(cfg), nc=5)
    kept, _ = intersect_by_correspondence(stock.state_dict(), target.state_dict(), stock.yaml, target.yaml,
                                          exclude=['anchor'])
    target.load_state_dict(kept, strict=False)
    resolved, fresh, carried = attn_start.plan(mode, {'model': stock}, stock.yaml, target.yaml)
    started = attn_start.prepare(target, resolved, fresh, carried)
    return target.eval(), resolved, started


@pytest.mark.parametrize('cfg', list(CFGS))
def test_epoch0_outputs_equal_stock_with_identity_start(stock, cfg):
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        want = stock(x)[0]
        model, mode, started = transferred(stock, cfg, None)  # the default when weights transfer
        got = model(x)[0]
        paper, _, none = transferred(stock, cfg, 'paper')
        differs = paper(x)[0]
    assert mode == 'identity' and started == INSERTED and none == []
    assert all(type(model.model[i]).__name__ == CFGS[cfg] for i in started)  # same module types
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # control: the papers' start moves the outputs (what the identity start exists to avoid)
    assert (differs - want).abs().max() > 1e-2


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_without_gamma_the_block_is_todays_forward_bit_for_bit(cls):
    m = random_block(cls)
    x = torch.randn(2, 64, 9, 7)
    paper_forward = type(m).forward.__wrapped__  # the class's own forward, unwrapped
    assert not has_identity_start(m) and GAMMA not in m.state_dict()
    assert torch.equal(m(x), paper_forward(m, x))


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_residual_scale_blends_block_and_input(cls):
    m = random_block(cls)
    x = torch.randn(2, 64, 9, 7)
    paper = m(x)
    start_as_identity(m, 64)
    assert torch.equal(m(x), x)  # gamma = 0: exactly the identity
    m(x).square().sum().backward()
    assert getattr(m, GAMMA).grad.abs().sum() > 0  # gamma learns to depart from the identity
    with torch.no_grad():
        getattr(m, GAMMA).fill_(1.0)
        torch.testing.assert_close(m(x), paper, rtol=1e-5, atol=1e-5)  # gamma = 1: the paper formula
        g = torch.rand(64, 1, 1)
        getattr(m, GAMMA).copy_(g)
        torch.testing.assert_close(m(x), x + g * (paper - x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=GAMMA):
        start_as_identity(m, 64)  # twice is refused, not silently reset


def test_user_block_gets_identity_start_and_subclass_scales_once():
    class DoubleGate(nn.Module):
        def __init__(self, c1):
            super().__init__()
            self.w = nn.Parameter(torch.full((c1, 1, 1), 0.3))

        def forward(self, x):
            return x * torch.sigmoid(self.w)

    class DoubleGateTwice(DoubleGate):
        def forward(self, x):
            return super().forward(x) * 2

    names = ('IdentityStartProbe', 'IdentityStartProbeSub')
    try:
        register_block(DoubleGate, name=names[0])
        register_block(DoubleGateTwice, name=names[1])
        x = torch.randn(1, 4, 5, 5)
        for cls, paper in ((DoubleGate, lambda x: x * torch.sigmoid(torch.tensor(0.3))),
                           (DoubleGateTwice, lambda x: 2 * x * torch.sigmoid(torch.tensor(0.3)))):
            m = cls(4)
            torch.testing.assert_close(m(x), paper(x))
            start_as_identity(m, 4)
            assert torch.equal(m(x), x)
            with torch.no_grad():
                getattr(m, GAMMA).fill_(0.5)
            torch.testing.assert_close(m(x), x + 0.5 * (paper(x) - x))  # scaled once, not per super() call
    finally:
        for n in names:
            BLOCKS.pop(n, None)


def model_with_scales(cfg='yolov5n-cbam'):
    torch.manual_seed(0)
    model = Model(load_cfg(cfg), nc=5).eval()
    assert apply_identity_start(model) == INSERTED
    with torch.no_grad():
        for i in INSERTED:
            getattr(model.model[i], GAMMA).uniform_(0.2, 0.9)  # trained-looking scales, not zeros
    return model


def export_parity(model, x, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    with torch.no_grad():
        want = model(x)[0]
        traced = torch.jit.trace(model, x, strict=False)
        torch.testing.assert_close(traced(x)[0], want, rtol=1e-4, atol=1e-4)
        f = tmp_path / 'm.onnx'
        torch.onnx.export(model, x, str(f), opset_version=12, input_names=['images'], output_names=['output0'],
                          dynamo=False)
    got = ort.InferenceSession(str(f), providers=['CPUExecutionProvider']).run(None, {'images': x.numpy()})[0]
    # float32 through two runtimes: different kernels and summation orders
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_block_export_parity_with_scales(cls, tmp_path):
    m = random_block(cls, 16)
    start_as_identity(m, 16)
    with torch.no_grad():
        getattr(m, GAMMA).uniform_(0.2, 0.9)
    export_parity(WithTuple(m), torch.randn(1, 16, 6, 5), tmp_path)


def test_model_export_parity_with_scales(tmp_path):
    export_parity(model_with_scales('yolov5n-cbam'), torch.rand(1, 3, 64, 64), tmp_path)


class WithTuple(nn.Module):
    """Returns ``(block(x),)``, the shape of a yolov5 model's output, for ``export_parity``."""

    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return (self.block(x),)


def save_checkpoint(model, path):
    """A checkpoint as yolov5's train.py/strip_optimizer writes it (pickled half-precision model)."""
    torch.save({'epoch': -1, 'model': model.half(), 'ema': None, 'optimizer': None}, path)


def test_new_checkpoint_loads_securely_with_its_scales(tmp_path):
    model = model_with_scales()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        want = model.float()(x)[0]
    save_checkpoint(model, tmp_path / 'new.pt')
    loaded = load_checkpoint(tmp_path / 'new.pt')['model'].float().eval()  # weights_only=True
    assert [i for i, m in enumerate(loaded.model) if has_identity_start(m)] == INSERTED
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], want, rtol=2e-2, atol=2e-2)  # the checkpoint is float16


def test_checkpoint_from_before_the_change_loads_and_runs_the_paper_formula(tmp_path):
    torch.manual_seed(0)
    old = Model(load_cfg('yolov5n-cbam'), nc=5).eval()  # built as before this change: no residual scale
    assert not any(k.endswith(GAMMA) for k in old.state_dict())
    save_checkpoint(old, tmp_path / 'old.pt')
    loaded = load_checkpoint(tmp_path / 'old.pt')['model'].float().eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for i in INSERTED:
            block = loaded.model[i]
            assert not has_identity_start(block)
            feature = torch.rand(1, block.channel.mlp[0].in_features, 8, 8)
            assert torch.equal(block(feature), type(block).forward.__wrapped__(block, feature))
        torch.testing.assert_close(loaded(x)[0], old.float()(x)[0], rtol=0, atol=0)
    # a state dict without the new keys loads strictly into a model built from the YAML
    fresh = Model(load_cfg('yolov5n-cbam'), nc=5)
    fresh.load_state_dict(old.state_dict(), strict=True)
    # and fine-tuning it carries nothing, starts nothing (no block is new)
    assert attn_start.plan(None, {'model': old}) == ('paper', [], {})


def test_scales_carried_through_transfer_to_another_yaml():
    src = model_with_scales('yolov5n-se')
    values = {i: getattr(src.model[i], GAMMA).detach().clone() for i in INSERTED}
    dst_yaml, _ = insert_blocks(src.yaml, 'CBAM', [12])  # one more block, after the last SE
    mode, fresh, carried = attn_start.plan(None, {'model': src}, src.yaml, dst_yaml)
    assert mode == 'identity' and fresh == [13]
    assert sorted(carried) == INSERTED and all(torch.equal(carried[i], values[i].float()) for i in INSERTED)
    target = Model(dst_yaml, nc=5)
    started = attn_start.prepare(target, mode, fresh, carried, frozen={5})
    assert started == fresh
    assert torch.equal(getattr(target.model[8], GAMMA), values[8]) and getattr(target.model[8], GAMMA).requires_grad
    assert not getattr(target.model[5], GAMMA).requires_grad  # --freeze covers the scale of a frozen layer


def test_from_scratch_defaults_to_paper_and_identity_is_opt_in():
    assert attn_start.plan(None) == ('paper', None, {})
    model = Model(load_cfg('yolov5n-eca'), nc=5)
    assert attn_start.prepare(model, 'paper', None, {}) == []
    assert not any(k.endswith(GAMMA) for k in model.state_dict())
    assert attn_start.prepare(model, 'identity', None, {}) == INSERTED


def test_train_logs_epoch0_and_saves_the_scales(tmp_path):
    out = run_cli('data', 'shapes', '--out', tmp_path / 'ds', '--train', '4', '--val', '4', '--imgsz', '64',
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from yolo_attn.config.files import resolve_weights
    weights = resolve_weights('yolov5n-shapes.pt')
    run = run_cli('train', '--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-se', '--weights', weights, '--epochs', '1',
                  '--batch-size', '4', '--imgsz', '64', '--device', 'cpu', '--workers', '0', '--noplots',
                  '--name', 'se', cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert 'attention start: identity for layers 5 (SE), 8 (SE), 12 (SE)' in log
    assert 'epoch 0 (after transfer): mAP50 ' in log and ' mAP50-95 ' in log.split('epoch 0 (after transfer)')[1]
    ckpt = load_checkpoint(tmp_path / 'runs' / 'train' / 'se' / 'weights' / 'last.pt')
    keys = [k for k in ckpt['model'].state_dict() if k.endswith(GAMMA)]
    assert keys == [f'model.{i}.{GAMMA}' for i in INSERTED]
    bad = run_cli('train', '--attn-start', 'zero', '--data', 'ds/shapes.yaml', cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice: 'zero'" in bad.stderr
