"""Registered blocks in ultralytics model YAMLs (``yolo_attn.ultralytics.install``).

Stock detect YAMLs of every family build bit-identically with and without the wrapper; the shipped
and a user block get the true input channels (width multiple applied) on yolov8/yolo11/yolo26 at two
scales; bad rows and a changed ultralytics are refused in one line; the import stays light.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import subprocess
import sys
import textwrap
import types
import uuid
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

from yolo_attn.errors import ModelConfigError
from yolo_attn.ultralytics import UltralyticsCompatError, install, uninstall

ULTRALYTICS = Path(importlib.util.find_spec('ultralytics').origin).parent  # found without importing it
MODELS = ULTRALYTICS / 'cfg' / 'models'
FAMILIES = {'v3', 'v5', 'v6', 'v8', 'v9', 'v10', '11', '12', '26'}
BLOCK_ARGS = {'SE': [], 'CBAM': [16, 7], 'ECA': [], 'CoordAtt': [], 'SimAM': []}
IMGSZ = 64  # a multiple of the largest stride (P6 models)


def stock_detect_yamls() -> list[str]:
    """Detect YAMLs of the plain families (no seg/pose/obb/cls/world/yoloe/rtdetr), as 'family/name'."""
    out = []
    for path in sorted(MODELS.glob('*/*.yaml')):
        if path.parent.name not in FAMILIES or path.name.startswith(('yoloe', 'rtdetr')):
            continue
        d = yaml.safe_load(path.read_text())
        if d['head'][-1][2] in ('Detect', 'v10Detect'):
            out.append(f'{path.parent.name}/{path.stem}')
    return out


STOCK = stock_detect_yamls()


@pytest.fixture(scope='module')
def tasks(tmp_path_factory):
    """``ultralytics.nn.tasks`` with the wrapper installed; settings.json under a tmp dir (if this
    process has not imported ultralytics yet), offline; the state found is restored afterwards."""
    saved = {k: os.environ.get(k) for k in ('YOLO_CONFIG_DIR', 'YOLO_OFFLINE')}
    if 'ultralytics' not in sys.modules:
        os.environ['YOLO_CONFIG_DIR'] = str(tmp_path_factory.mktemp('ultralytics_config'))
    os.environ.setdefault('YOLO_OFFLINE', '1')  # no DNS probe on import
    from ultralytics.nn import tasks
    was_installed = getattr(tasks.parse_model, '_yolo_attn', False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    install()
    yield tasks
    if not was_installed:
        uninstall()
    torch.set_num_threads(threads)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def original(tasks):
    return tasks.parse_model.__wrapped__


def load(name: str, scale: str | None = 'n') -> dict:
    from ultralytics.utils import YAML
    d = YAML.load(MODELS / f'{name}.yaml')
    if d.get('scales'):
        d['scale'] = scale if scale in d['scales'] else next(iter(d['scales']))
    return d


def build(tasks, d: dict, seed: int = 0):
    torch.manual_seed(seed)
    return tasks.DetectionModel(copy.deepcopy(d), ch=3, nc=3, verbose=False).eval()


def tensors(y) -> list[torch.Tensor]:
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        return [t for k in sorted(y) for t in tensors(y[k])]
    if isinstance(y, (list, tuple)):
        return [t for v in y for t in tensors(v)]
    return []


def run(model):
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return tensors(model(x))


def with_row(d: dict, row: list, at: int | None = None) -> dict:
    """``d`` with ``row`` inserted as layer ``at`` (default: end of the backbone); every later
    absolute 'from' index at or past ``at`` is shifted by one, as a user editing the YAML would."""
    d = copy.deepcopy(d)
    nb = len(d['backbone'])
    at = nb if at is None else at
    for r in (d['backbone'] + d['head'])[at:]:
        r[0] = [x + 1 if x >= at else x for x in r[0]] if isinstance(r[0], list) else r[0] + (r[0] >= at)
    if at <= nb:
        d['backbone'].insert(at, row)
    else:
        d['head'].insert(at - nb, row)
    return d


def spy_c1(monkeypatch, cls) -> list:
    """The ``c1`` of every ``cls(...)`` built from now on."""
    calls, init = [], cls.__init__

    @functools.wraps(init)
    def spy(self, c1, *args, **kwargs):
        calls.append(c1)
        init(self, c1, *args, **kwargs)

    monkeypatch.setattr(cls, '__init__', spy)
    return calls


def check_block_channels(model, i: int, cls, calls: list, n: int) -> None:
    """Layer ``i`` holds ``n`` ``cls`` blocks built with the output channels of the layer it reads,
    measured in a forward pass (hooks), and keeps their shape."""
    layer = model.model[i]
    blocks = list(layer) if isinstance(layer, nn.Sequential) else [layer]
    assert len(blocks) == n and all(type(b) is cls for b in blocks), blocks
    src = layer.f if layer.f >= 0 else i + layer.f
    seen = {}

    def record(key, value):  # a hook that returns something replaces the layer's output: return None
        seen.setdefault(key, value)

    hooks = [model.model[src].register_forward_hook(lambda m, a, y: record('src', y.shape[1])),
             blocks[0].register_forward_pre_hook(lambda m, a: record('in', a[0].shape)),
             blocks[-1].register_forward_hook(lambda m, a, y: record('out', y.shape))]
    try:
        out = run(model)
    finally:
        for h in hooks:
            h.remove()
    assert out and all(torch.isfinite(t).all() for t in out)
    assert calls == [seen['src']] * n, (calls, seen)
    assert seen['in'][1] == seen['src'] and seen['out'] == seen['in']


# ---- (a) stock YAMLs: identical with and without the wrapper -------------------------------------

def test_every_family_is_covered():
    assert {name.split('/')[0] for name in STOCK} == FAMILIES
    assert len(STOCK) >= 20, STOCK


@pytest.mark.parametrize('name', STOCK)
def test_stock_yaml_builds_identically(tasks, original, monkeypatch, name):
    from yolo_attn.ultralytics import parsing
    d = load(name)
    monkeypatch.setattr(parsing, '_registered', lambda: pytest.fail('a stock YAML loaded the block registry'))
    wrapped = build(tasks, d)
    monkeypatch.setattr(tasks, 'parse_model', original)
    plain = build(tasks, d)
    assert sum(p.numel() for p in wrapped.parameters()) == sum(p.numel() for p in plain.parameters())
    sa, sb = wrapped.state_dict(), plain.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    ya, yb = run(wrapped), run(plain)
    assert len(ya) == len(yb) > 0 and all(torch.equal(a, b) for a, b in zip(ya, yb))


# ---- (b) shipped blocks in yolov8 / yolo11 / yolo26 at two scales --------------------------------

MODERN = ['v8/yolov8', '11/yolo11', '26/yolo26']


@pytest.mark.parametrize('scale', ['n', 's'])
@pytest.mark.parametrize('name', MODERN)
@pytest.mark.parametrize('block', list(BLOCK_ARGS))
def test_shipped_block_gets_input_channels(tasks, monkeypatch, block, name, scale):
    import yolo_attn
    cls = getattr(yolo_attn, block)
    calls = spy_c1(monkeypatch, cls)
    d = load(name, scale)
    at = len(d['backbone'])
    # scale n: `from -1`, one block; scale s: the same input by absolute index, 3 repeats (x depth)
    f, n = (-1, 1) if scale == 'n' else (at - 1, 3)
    model = build(tasks, with_row(d, [f, n, block, list(BLOCK_ARGS[block])]))
    depth = d['scales'][scale][0]
    check_block_channels(model, at, cls, calls, max(round(n * depth), 1) if n > 1 else n)
    assert model.model[at].type == f'{cls.__module__}.{cls.__qualname__}'


@pytest.mark.parametrize('row', [[4, 1, 'CBAM', [16, 7]], [-2, 2, 'SE', [8]]], ids=['absolute', 'negative'])
def test_block_reading_an_earlier_layer(tasks, monkeypatch, row):
    """A block inserted as layer 5 of yolo11s reading layer 4 by index, or layer 3 by -2 (a side branch
    the next rows then read): built with that layer's channels, and so is its output."""
    import yolo_attn
    cls = getattr(yolo_attn, row[2])
    calls = spy_c1(monkeypatch, cls)
    model = build(tasks, with_row(load('11/yolo11', 's'), row, at=5))
    check_block_channels(model, 5, cls, calls, max(round(row[1] * 0.5), 1) if row[1] > 1 else 1)


# ---- (c) a user block -------------------------------------------------------------------------

class UserGate(nn.Module):
    def __init__(self, c1, r=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Conv2d(c1, max(c1 // r, 1), 1), nn.ReLU(), nn.Conv2d(max(c1 // r, 1), c1, 1))

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


@pytest.fixture
def user_block():
    from yolo_attn import BLOCKS, register_block
    name = f'TestGate{uuid.uuid4().hex[:8]}'
    register_block(UserGate, name=name)
    try:
        yield name
    finally:
        BLOCKS.pop(name, None)


@pytest.mark.parametrize('scale', ['n', 's'])
@pytest.mark.parametrize('name', MODERN)
def test_user_block_gets_input_channels(tasks, monkeypatch, user_block, name, scale):
    calls = spy_c1(monkeypatch, UserGate)
    d = load(name, scale)
    at = len(d['backbone'])
    f, n, args = (-1, 1, [8]) if scale == 'n' else (at - 1, 4, [])
    model = build(tasks, with_row(d, [f, n, user_block, args]))
    depth = d['scales'][scale][0]
    check_block_channels(model, at, UserGate, calls, max(round(n * depth), 1) if n > 1 else n)


def test_removed_user_block_is_unknown_again(tasks, user_block):
    from yolo_attn import BLOCKS
    d = with_row(load('v8/yolov8'), [-1, 1, user_block, []])
    build(tasks, d)
    BLOCKS.pop(user_block)
    with pytest.raises(KeyError, match=user_block):  # ultralytics' own error for an unknown name
        build(tasks, d)


# ---- (d) refused rows, name clashes ---------------------------------------------------------------

def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert '\n' not in message
    return message


def test_multi_input_row_refused(tasks):
    d = load('v8/yolov8')
    d['head'].insert(2, [[-1, 6], 1, 'SE', []])  # where a Concat would be
    with pytest.raises(ModelConfigError) as e:
        build(tasks, d)
    message = one_line(e)
    assert message.startswith('layer 12 (head row 2:') and 'SE takes one input' in message
    assert 'Concat' in message and '-1' in message


@pytest.mark.parametrize('k', [7, 3])
def test_cbam_written_the_ultralytics_way_refused(tasks, k):
    with pytest.raises(ModelConfigError) as e:
        build(tasks, with_row(load('11/yolo11'), [-1, 1, 'CBAM', [k]]))
    message = one_line(e)
    assert "ultralytics' CBAM(c1, kernel_size" in message and 'CBAM(c1, r=16, k=7)' in message
    assert f'[16, {k}]' in message and 'layer 11' in message


@pytest.mark.parametrize('row, expected', [
    ([-1, 1, 'SE', [16, 3, 9]], 'SE takes (r) after the input channels'),
    ([-1, 1, 'CBAM', [16, 4]], 'spatial kernel k must be'),
    ([-1, 0, 'SE', []], 'number of repeats must be a positive integer'),
    ([99, 1, 'SE', []], "'from' index 99 is out of range"),
    ([-1, 1, 'SE', 16], 'arguments must be a list'),
])
def test_bad_block_rows_refused(tasks, row, expected):
    with pytest.raises(ModelConfigError) as e:
        build(tasks, with_row(load('v8/yolov8'), row))
    assert expected in one_line(e)


def test_shipped_name_stays_ours_if_ultralytics_adds_it(tasks, monkeypatch):
    """SE/CBAM/... mean yolo-attn's blocks even if ultralytics' tasks imports a module of that name."""
    import yolo_attn
    from ultralytics.nn.modules.conv import CBAM as UltralyticsCBAM
    monkeypatch.setattr(tasks, 'CBAM', UltralyticsCBAM, raising=False)
    model = build(tasks, with_row(load('v8/yolov8'), [-1, 1, 'CBAM', [16, 7]]))
    assert type(model.model[10]) is yolo_attn.CBAM


def test_ultralytics_name_wins_over_a_user_block(tasks, monkeypatch):
    """A user block under one of ultralytics' own module names: ultralytics' module, with a warning."""
    from yolo_attn import BLOCKS
    from yolo_attn.ultralytics import parsing
    monkeypatch.setitem(BLOCKS, 'PSA', UserGate)  # (register_block would accept it: not a yolov5 name)
    monkeypatch.setattr(parsing, '_WARNED', set())
    with pytest.warns(UserWarning, match="ultralytics YAMLs get ultralytics' PSA"):
        assert parsing._choose('PSA', vars(tasks)) is None
    assert parsing._choose('SE', vars(tasks)) is BLOCKS['SE']
    assert parsing._choose('nn.Upsample', vars(tasks)) is None
    model = build(tasks, load('11/yolo11'))  # its C2PSA rows: ultralytics' as ever
    assert type(model.model[10]).__module__.startswith('ultralytics.')


# ---- (e) the self-check refuses a changed ultralytics -------------------------------------------

def _version():
    from yolo_attn.ultralytics.parsing import ultralytics_version
    return ultralytics_version()


def _fake_signature(original):
    def parse_model(cfg, channels, verbose=True):
        return original(cfg, channels, verbose)
    return parse_model


def _channel_args(value):
    """A parse_model whose string argument 'ch' no longer means its channel list."""
    def make(original):
        def parse_model(d, ch, verbose=True):
            d = copy.deepcopy(d)
            for row in d['backbone'] + d['head']:
                row[3] = [value if a == 'ch' else a for a in row[3]]
            return original(d, ch, verbose)
        return parse_model
    return make


@pytest.mark.parametrize('make, broke', [
    (_fake_signature, 'parse_model signature is (cfg, channels, verbose)'),
    (_channel_args([8] * 64), 'probe blocks got (c1, args) [(8, (5,))'),
    (_channel_args('nope'), 'building a probe model failed'),
], ids=['signature', 'wrong-channels', 'no-channel-list'])
def test_self_check_refuses_changed_parse_model(tasks, original, monkeypatch, make, broke):
    fake = make(original)
    monkeypatch.setattr(tasks, 'parse_model', fake)
    with pytest.raises(UltralyticsCompatError) as e:
        install()
    message = one_line(e)
    assert message.startswith(f'ultralytics {_version()}: yolo-attn cannot register its blocks')
    assert broke in message and 'ultralytics==8.4.190' in message
    assert tasks.parse_model is fake  # left as found


def test_self_check_refuses_detection_model_bypassing_the_global(tasks, original, monkeypatch):
    init = tasks._initialize_yolo_model
    bypass = types.FunctionType(init.__code__, {**vars(tasks), 'parse_model': original}, init.__name__,
                                init.__defaults__, init.__closure__)
    monkeypatch.setattr(tasks, '_initialize_yolo_model', bypass)
    monkeypatch.setattr(tasks, 'parse_model', original)
    with pytest.raises(UltralyticsCompatError) as e:
        install()
    assert "KeyError: 'YoloAttnSelfCheck'" in one_line(e)
    assert tasks.parse_model is original


def test_self_check_refuses_missing_globals(tasks, original, monkeypatch):
    monkeypatch.setattr(tasks, 'parse_model', original)
    monkeypatch.delattr(tasks, 'DetectionModel')
    with pytest.raises(UltralyticsCompatError, match='ultralytics.nn.tasks has no DetectionModel'):
        install()


def test_lenient_install_keeps_stock_yamls_and_refuses_block_rows(tasks, original, monkeypatch):
    """The import hook's ``install(strict=False)``: never breaks ultralytics, never a wrong model."""
    fake = _channel_args([8] * 64)(original)
    monkeypatch.setattr(tasks, 'parse_model', fake)
    install(strict=False)
    assert tasks.parse_model.__wrapped__ is fake
    build(tasks, load('v8/yolov8'))
    with pytest.raises(UltralyticsCompatError, match='yolo-attn cannot register its blocks'):
        build(tasks, with_row(load('v8/yolov8'), [-1, 1, 'SE', []]))
    with pytest.raises(UltralyticsCompatError):
        install()  # strict: the stored failure


def test_install_is_idempotent(tasks):
    wrapper = tasks.parse_model
    install()
    install()
    assert tasks.parse_model is wrapper and wrapper.__wrapped__.__module__ == 'ultralytics.nn.tasks'
    import ultralytics.nn
    assert ultralytics.nn.parse_model is wrapper


def test_self_check_leaves_rng_and_detect_state(tasks, original, monkeypatch):
    monkeypatch.setattr(tasks, 'parse_model', original)
    legacy = tasks.Detect.legacy
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    install()
    assert torch.equal(torch.rand(3), expected) and tasks.Detect.legacy == legacy


# ---- (f) model.yaml keeps the rows as written ---------------------------------------------------

def test_model_yaml_keeps_rows_as_written(tasks, monkeypatch):
    d = load('11/yolo11')
    d = with_row(d, [4, 2, 'CBAM', [16, 7]], at=5)  # reads layer 4 by index
    d = with_row(d, [-1, 1, 'SE', []], at=8)
    written = copy.deepcopy(d)
    received = []
    wrapper = tasks.parse_model

    def recording(cfg, *args, **kwargs):
        received.append((cfg, copy.deepcopy(cfg)))
        return wrapper(cfg, *args, **kwargs)

    monkeypatch.setattr(tasks, 'parse_model', recording)
    torch.manual_seed(0)
    model = tasks.DetectionModel(d, ch=3, nc=3, verbose=False)
    assert model.yaml['backbone'] == written['backbone'] and model.yaml['head'] == written['head']
    assert model.yaml['backbone'][5] == [4, 2, 'CBAM', [16, 7]] and model.yaml['backbone'][8] == [-1, 1, 'SE', []]
    (cfg, before), = received
    assert cfg is not model.yaml and cfg['backbone'] is not model.yaml['backbone']  # ultralytics' deep copy
    assert cfg['backbone'][5] == [4, 2, 'CBAM', [16, 7]] and cfg['backbone'][8] == [-1, 1, 'SE', []]  # untouched
    assert before['backbone'] == written['backbone']


# ---- (g) light import, (h) ULTRALYTICS_SAFE_LOAD ---------------------------------------------------

def _python(code: str, tmp_path, **env):
    env = {**os.environ, 'YOLO_CONFIG_DIR': str(tmp_path), 'YOLO_OFFLINE': '1', 'OMP_NUM_THREADS': '1',
           'PYTHONWARNINGS': 'ignore', **env}
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_is_light(tmp_path):
    r = _python('''
        import sys
        import yolo_attn.ultralytics as u
        u.activate_on_ultralytics_import()
        print(sorted(m for m in ('torch', 'ultralytics', 'yolov5') if m in sys.modules))
    ''', tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]'


def test_builds_under_ultralytics_safe_load(tmp_path):
    if 'ULTRALYTICS_SAFE_LOAD' not in (ULTRALYTICS / 'utils' / '__init__.py').read_text():
        pytest.skip('this ultralytics has no ULTRALYTICS_SAFE_LOAD')
    r = _python(f'''
        import sys, torch
        import yolo_attn.ultralytics as u
        u.activate_on_ultralytics_import()  # the import hook installs
        from ultralytics.nn import tasks
        from ultralytics.utils import YAML
        assert tasks._SafeLoad.restricted(), 'restricted mode is off'
        d = YAML.load({str(MODELS / 'v8' / 'yolov8.yaml')!r})
        d['scale'] = 'n'
        d['backbone'] += [[-1, 1, 'SE', []], [-1, 2, 'CBAM', [16, 7]]]
        for row in d['head']:
            if isinstance(row[0], list):
                row[0] = [x + 2 if x >= 10 else x for x in row[0]]
        m = tasks.DetectionModel(d, ch=3, nc=2, verbose=False).eval()
        with torch.no_grad():
            m(torch.zeros(1, 3, 64, 64))
        print('RESULT', type(m.model[10]).__name__, m.model[10].fc1.in_features, type(m.model[11]).__name__)
    ''', tmp_path, ULTRALYTICS_SAFE_LOAD='1')
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split('RESULT')[-1].split() == ['SE', '256', 'CBAM'], r.stdout
