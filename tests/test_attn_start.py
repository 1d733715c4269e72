"""How inserted blocks start (``blocks.start``, ``integration.attn_start``): a blend ramped from the
identity to the paper formula (default after a transfer) or a learned residual scale; the paper
formula stays bit-exact without either; export, secure loading and old checkpoints keep working;
``yolo-attn train`` logs the epoch-0 validation and each block's strength."""

import pytest
import torch
import torch.nn as nn

from conftest import run_cli
from test_transfer import trained_stock_model
from yolo_attn.blocks import CBAM, ECA, SE, CoordAtt, SimAM
from yolo_attn.config.files import load_cfg
from yolo_attn.config.surgery import insert_blocks
from yolo_attn.config.transfer import intersect_by_correspondence
from yolo_attn.blocks.start import (BLEND, GAMMA, apply_blend_start, apply_residual_start, blend_of, finish_blends,
                                    has_residual_scale, start_residual, start_blended)
from yolo_attn.blocks.strength import block_strength
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
def test_epoch0_outputs_equal_stock_with_the_default_ramp(stock, cfg):
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        want = stock(x)[0]
        model, mode, started = transferred(stock, cfg, None)  # the default when weights transfer
        got = model(x)[0]
        paper, _, none = transferred(stock, cfg, 'paper')
        differs = paper(x)[0]
    assert mode == 'ramp' and started == INSERTED and none == []
    assert [blend_of(model.model[i]) for i in started] == [0.0] * 3
    assert all(type(model.model[i]).__name__ == CFGS[cfg] for i in started)  # same module types
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # control: the papers' start moves the outputs (what the identity start exists to avoid)
    assert (differs - want).abs().max() > 1e-2


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_without_gamma_the_block_is_todays_forward_bit_for_bit(cls):
    m = random_block(cls)
    x = torch.randn(2, 64, 9, 7)
    paper_forward = type(m).forward.__wrapped__  # the class's own forward, unwrapped
    assert not has_residual_scale(m) and GAMMA not in m.state_dict()
    assert torch.equal(m(x), paper_forward(m, x))


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_residual_scale_blends_block_and_input(cls):
    m = random_block(cls)
    x = torch.randn(2, 64, 9, 7)
    paper = m(x)
    start_residual(m, 64)
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
        start_residual(m, 64)  # twice is refused, not silently reset


def test_user_block_gets_the_residual_start_and_subclass_scales_once():
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
            start_residual(m, 4)
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
    assert apply_residual_start(model) == INSERTED
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
    start_residual(m, 16)
    with torch.no_grad():
        getattr(m, GAMMA).uniform_(0.2, 0.9)
    export_parity(WithTuple(m), torch.randn(1, 16, 6, 5), tmp_path)


def test_model_export_parity_with_scales(tmp_path):
    export_parity(model_with_scales('yolov5n-cbam'), torch.rand(1, 3, 64, 64), tmp_path)


def test_model_export_parity_mid_ramp(tmp_path):
    """A checkpoint saved mid-ramp (an epochN.pt) exports as it computes: the blend is in the graph."""
    torch.manual_seed(0)
    model = Model(load_cfg('yolov5n-cbam'), nc=5).eval()
    apply_blend_start(model, values={5: 0.3, 8: 0.6, 12: 0.9})
    export_parity(model, torch.rand(1, 3, 64, 64), tmp_path)


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
    assert [i for i, m in enumerate(loaded.model) if has_residual_scale(m)] == INSERTED
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
            assert not has_residual_scale(block)
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
    mode, fresh, carried = attn_start.plan('residual', {'model': src}, src.yaml, dst_yaml)
    assert mode == 'residual' and fresh == [13]
    assert sorted(carried) == INSERTED
    assert all(carried[i][0] == 'gamma' and torch.equal(carried[i][1], values[i].float()) for i in INSERTED)
    target = Model(dst_yaml, nc=5)
    started = attn_start.prepare(target, mode, fresh, carried, frozen={5})
    assert started == fresh
    assert torch.equal(getattr(target.model[8], GAMMA), values[8]) and getattr(target.model[8], GAMMA).requires_grad
    assert not getattr(target.model[5], GAMMA).requires_grad  # --freeze covers the scale of a frozen layer


@pytest.mark.parametrize('mode, key', [('residual', GAMMA), ('ramp', BLEND)])
def test_from_scratch_defaults_to_paper_and_the_others_are_opt_in(mode, key):
    assert attn_start.plan(None) == ('paper', None, {})
    model = Model(load_cfg('yolov5n-eca'), nc=5)
    assert attn_start.prepare(model, 'paper', None, {}) == []
    assert not any(k.endswith((GAMMA, BLEND)) for k in model.state_dict())
    assert attn_start.prepare(model, mode, None, {}) == INSERTED
    assert [k for k in model.state_dict() if k.endswith((GAMMA, BLEND))] == [f'model.{i}.{key}' for i in INSERTED]


@pytest.mark.parametrize('cls', BLOCK_CLASSES)
def test_blend_mixes_block_and_input_and_removing_it_is_the_paper_formula(cls):
    m = random_block(cls)
    x = torch.randn(2, 64, 9, 7)
    paper = m(x)
    start_blended(m)
    assert torch.equal(m(x), x)  # blend 0: exactly the identity
    if list(m.parameters()):  # (SimAM has none)
        m(x).square().sum().backward()
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.parameters())  # no signal at 0...
        m._buffers[BLEND].fill_(0.25)
        m.zero_grad()
        m(x).square().sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())  # ...some once > 0
    m._buffers[BLEND].fill_(0.25)
    with torch.no_grad():
        torch.testing.assert_close(m(x), x + 0.25 * (paper - x), rtol=1e-5, atol=1e-5)
        m._buffers[BLEND].fill_(1.0)
        assert finish_blends(m) == [m] and BLEND not in m.state_dict()
        assert torch.equal(m(x), paper)  # finished: the paper formula bit for bit
    both = random_block(cls)
    start_residual(both, 64)
    with pytest.raises(ValueError, match=GAMMA):
        start_blended(both)  # one start per block


class Options:
    """The train.py options ``StartRun`` reads."""

    def __init__(self, epochs=10, attn_ramp=None, save_dir='.'):
        self.epochs, self.attn_ramp, self.save_dir = epochs, attn_ramp, save_dir
        self.hyp = {'warmup_epochs': 3.0}


def ramp_model(values=None):
    torch.manual_seed(0)
    model = Model(load_cfg('yolov5n-se'), nc=5)
    assert apply_blend_start(model, values=values) == INSERTED
    return model


def blends(model):
    return [blend_of(model.model[i]) for i in INSERTED]


def test_ramp_rises_per_iteration_to_one_and_stays():
    run = attn_start.StartRun(Options(epochs=10, attn_ramp=2), 'ramp', INSERTED, {})
    run.model = ramp_model()
    run.batches(4)  # 2 epochs of 4 batches: 8 iterations
    assert run.ramp.steps == 8 and not run.full_strength()
    seen = []
    for _ in range(12):
        run.step()
        seen.append(blends(run.model)[0])
    assert seen[:8] == pytest.approx([k / 8 for k in range(1, 9)]) and seen[8:] == [1.0] * 4
    assert run.full_strength() and blends(run.model) == [1.0] * 3


def test_ramp_defaults_to_warmup_epochs_at_most_half_the_run():
    for epochs, want in ((20, 3 * 16), (4, 2 * 16), (1, 8)):
        run = attn_start.StartRun(Options(epochs=epochs), 'ramp', INSERTED, {})
        run.model = ramp_model()
        run.batches(16)
        assert run.ramp.steps == want


def test_resume_continues_the_ramp_and_fine_tune_ramps_from_the_carried_blend():
    resumed = attn_start.StartRun(Options(epochs=10, attn_ramp=2), 'paper', [], {}, start_epoch=1)
    resumed.model = ramp_model(values={i: 0.5 for i in INSERTED})  # what last.pt of epoch 0 held
    resumed.batches(4)
    resumed.step()
    assert blends(resumed.model) == [pytest.approx(5 / 8)] * 3  # iteration 5 of 8, as if never stopped
    tuned = attn_start.StartRun(Options(epochs=10, attn_ramp=2), 'paper', [], {})
    tuned.model = ramp_model(values={5: 0.5, 8: 0.0, 12: 1.0})
    tuned.batches(4)
    for _ in range(4):
        tuned.step()
    assert blends(tuned.model) == pytest.approx([0.75, 0.5, 1.0])  # each from where it was, never down


def test_blends_carried_from_a_checkpoint_and_restored():
    src = ramp_model(values={i: 0.375 for i in INSERTED})
    mode, fresh, carried = attn_start.plan(None, {'model': src})
    assert mode == 'paper' and fresh == [] and carried == {i: ('blend', 0.375) for i in INSERTED}
    target = Model(load_cfg('yolov5n-se'), nc=5)
    attn_start.prepare(target, mode, fresh, carried)
    assert blends(target) == [0.375] * 3


def test_residual_scales_leave_the_weight_decayed_group():
    from yolov5.utils.torch_utils import smart_optimizer
    model = Model(load_cfg('yolov5n-se'), nc=5)
    apply_residual_start(model)
    optimizer = smart_optimizer(model, 'SGD', 0.01, 0.9, 5e-4)
    decayed = [g for g in optimizer.param_groups if g['weight_decay'] > 0]
    scales = {id(getattr(model.model[i], GAMMA)) for i in INSERTED}
    assert len(decayed) == 1 and scales <= {id(p) for p in decayed[0]['params']}  # yolov5's own grouping
    assert attn_start.residual_group(optimizer, model) == 3
    groups = [({id(p) for p in g['params']}, g['weight_decay']) for g in optimizer.param_groups]
    assert len(groups) == 3  # train.py logs one learning rate per group
    assert [wd for ids, wd in groups if scales <= ids] == [0.0]
    assert all(not (ids & scales) for ids, wd in groups if wd > 0)
    assert sum(len(ids) for ids, _ in groups) == len(list(model.parameters()))  # nothing lost or doubled


def test_ema_keeps_the_blend_in_force_and_fitness_waits_for_full_strength():
    import numpy as np
    import yolov5.train as train
    run = attn_start.StartRun(Options(epochs=10, attn_ramp=1), 'ramp', INSERTED, {})
    model = run.model = ramp_model()
    with attn_start.patched_train(train):
        attn_start._RUN[:] = [run]
        ema = train.ModelEMA(model)
        run.batches(4)
        results = np.array([[0.5, 0.5, 0.5, 0.5, 0, 0, 0]])
        for k in range(1, 5):
            run.step()
            assert blends(ema.ema) == blends(model)  # in force before any optimizer step (accumulation)
            ema.update(model)
            assert blends(ema.ema) == blends(model) == [min(1.0, k / 4)] * 3  # exact, not an average
            assert (train.fitness(results) < 0) == (k < 4)  # best.pt only at full strength
    assert train.ModelEMA is not ema.__class__  # undone after the run


def test_finished_checkpoint_computes_the_paper_formula_exactly(tmp_path):
    torch.manual_seed(0)
    paper = Model(load_cfg('yolov5n-cbam'), nc=5).eval()  # no blend ever
    blended = Model(load_cfg('yolov5n-cbam'), nc=5).eval()
    blended.load_state_dict(paper.state_dict())
    apply_blend_start(blended, values={i: 1.0 for i in INSERTED})
    save_checkpoint(blended, tmp_path / 'last.pt')
    attn_start.finish_checkpoint(tmp_path / 'last.pt')
    loaded = load_checkpoint(tmp_path / 'last.pt')['model'].float().eval()
    assert not any(k.endswith(BLEND) for k in loaded.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], paper.half().float()(x)[0])


def test_strength_is_zero_at_the_identity_and_measured_at_full_strength():
    model = ramp_model().eval()
    x = torch.rand(2, 3, 64, 64)
    assert [r.change for r in block_strength(model, x)] == [0.0] * 3
    finish_blends(attn_start_all_one(model))
    rows = block_strength(model, x)
    assert [(r.layer, r.name, r.mix) for r in rows] == [(i, 'SE', 'paper') for i in INSERTED]
    assert all(0.05 < r.change < 1 for r in rows)  # fresh SE gates ~0.5: about half the features


def attn_start_all_one(model):
    for i in INSERTED:
        model.model[i]._buffers[BLEND].fill_(1.0)
    return model


def test_train_ramps_logs_strength_and_saves_the_paper_blocks(tmp_path):
    out = run_cli('data', 'shapes', '--out', tmp_path / 'ds', '--train', '8', '--val', '4', '--imgsz', '64',
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from yolo_attn.config.files import resolve_weights
    weights = resolve_weights('yolov5n-shapes.pt')
    run = run_cli('train', '--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-se', '--weights', weights, '--epochs', '2',
                  '--batch-size', '4', '--imgsz', '64', '--device', 'cpu', '--workers', '0', '--noplots',
                  '--attn-ramp', '1', '--name', 'se', cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert 'attention start: ramp for layers 5 (SE), 8 (SE), 12 (SE)' in log
    assert 'blend rises to 1 over the first 2 iterations' in log
    assert 'epoch 0 (after transfer): mAP50 ' in log and ' mAP50-95 ' in log.split('epoch 0 (after transfer)')[1]
    run_dir = tmp_path / 'runs' / 'train' / 'se'
    rows = (run_dir / 'attention.csv').read_text().splitlines()
    assert rows[0] == 'epoch,layer,block,mix,change' and len(rows) == 1 + 2 * 3
    assert all(',blend 1.00,' in r for r in rows[1:])
    assert all(float(r.rsplit(',', 1)[1]) > 0.01 for r in rows[1:])  # the blocks act
    for f in ('last.pt', 'best.pt'):
        ckpt = load_checkpoint(run_dir / 'weights' / f)
        assert not any(k.endswith((BLEND, GAMMA)) for k in ckpt['model'].state_dict())  # the papers' blocks
    bad = run_cli('train', '--attn-start', 'identity', '--data', 'ds/shapes.yaml', cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice: 'identity'" in bad.stderr


def test_train_with_residual_scales_keeps_them_and_logs_every_epoch(tmp_path):
    out = run_cli('data', 'shapes', '--out', tmp_path / 'ds', '--train', '4', '--val', '4', '--imgsz', '64',
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    from yolo_attn.config.files import resolve_weights
    run = run_cli('train', '--data', 'ds/shapes.yaml', '--cfg', 'yolov5n-eca', '--weights',
                  resolve_weights('yolov5n-shapes.pt'), '--epochs', '2', '--batch-size', '4', '--imgsz', '64',
                  '--device', 'cpu', '--workers', '0', '--noplots', '--attn-start', 'residual', '--name', 'eca',
                  cwd=tmp_path)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert '3 residual scales in the parameter group without weight decay' in log
    run_dir = tmp_path / 'runs' / 'train' / 'eca'
    assert len((run_dir / 'results.csv').read_text().splitlines()) == 3  # yolov5's per-epoch log, 2 epochs
    ckpt = load_checkpoint(run_dir / 'weights' / 'last.pt')
    assert [k for k in ckpt['model'].state_dict() if k.endswith(GAMMA)] == [f'model.{i}.{GAMMA}' for i in INSERTED]
    assert ',residual |γ| mean ' in (run_dir / 'attention.csv').read_text()
