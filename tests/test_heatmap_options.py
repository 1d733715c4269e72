"""The heatmap library's surface: pytorch-grad-cam through its public per-method hooks
(``methods.CamMethod``), one keyword-only options object with the defaults written once
(``options.HeatmapOptions``), and errors that name options, not flags (the CLI names the flag)."""

import inspect

import numpy as np
import pytest
import torch

from conftest import WS_IMGSZ
from yolo_attn.errors import OptionError
from yolo_attn.heatmaps.methods import CAM_CLASSES, CamMethod, cam_class
from yolo_attn.heatmaps.options import DEFAULTS, HeatmapOptions


class TinyNet(torch.nn.Module):
    """Two convolutions and a linear classifier: small enough to run every method in milliseconds."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
        self.b = torch.nn.Sequential(torch.nn.Conv2d(8, 6, 3, stride=2, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.b(self.a(x)).mean((2, 3)))


class Logit:
    def __init__(self, c):
        self.c = c

    def __call__(self, out):
        return out[self.c]


@pytest.mark.parametrize('method', list(CAM_CLASSES))
def test_cam_method_equals_grad_cams_own_per_layer_maps(method):
    """``CamMethod.per_layer`` on activations and gradients we computed equals grad-cam's own
    forward, backward and ``compute_cam_per_layer`` on the same model, layers and targets."""
    net = TinyNet().eval()
    x = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    targets = [Logit(1), Logit(3)]
    layers = [net.a, net.b]
    cam = cam_class(method)(net, layers)
    cam.compute_input_gradient = True
    cam(x, targets)
    theirs = np.concatenate(cam.compute_cam_per_layer(x, targets, False), axis=1)
    cam.activations_and_grads.release()

    acts = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, m=m: acts.__setitem__(m, o)) for m in layers]
    out = net(x)
    for h in hooks:
        h.remove()
    ours_cam = CamMethod(method)
    a = [acts[m] for m in layers]
    grads = []
    if ours_cam.uses_gradients:
        score = sum(t(o) for t, o in zip(targets, out))
        grads = list(torch.autograd.grad(score, a))
    ours = ours_cam.per_layer(x, layers, targets, a, grads)
    assert ours.shape == (2, 2, 16, 20) and theirs.shape == ours.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=0)
    assert not ours_cam.cam.activations_and_grads.activations  # nothing written into the library's fields
    assert not ours_cam.cam.activations_and_grads.gradients


def test_engine_hooks_nothing_into_the_model(ws):
    """The engine's CAM object is built on a stand-in: the user's model carries no grad-cam hook."""
    from yolo_attn.heatmaps import HeatmapEngine, load_model
    model = load_model(ws / 'w.pt')
    before = [len(m._forward_hooks) for m in model.modules()]
    engine = HeatmapEngine(model, layers='backbone+detect')
    assert [len(m._forward_hooks) for m in model.modules()] == before
    assert engine.cam.name == DEFAULTS.method and engine.options == DEFAULTS.of(layers='backbone+detect')


def test_defaults_written_once_and_read_by_every_entry_point():
    """``run()``'s keywords, the heatmap CLI's flags, ``explain``, the engine and the ``Perturber`` read
    their defaults from ``options.DEFAULTS``."""
    from yolo_attn.cli import make_parser
    from yolo_attn.evaluation.perturb import Perturber
    from yolo_attn.heatmaps.runner import run
    params = inspect.signature(run).parameters
    shared = [n for n in params if n in HeatmapOptions.__dataclass_fields__]
    assert len(shared) >= 12
    for name in shared:
        assert params[name].default == getattr(DEFAULTS, name), name
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    args = make_parser('heatmap').parse_args(['heatmap', '--weights', 'w.pt', '--source', 'x'])
    for name in shared:
        if hasattr(args, name):
            assert getattr(args, name) == getattr(DEFAULTS, name), name
    assert inspect.signature(Perturber).parameters['imgsz'].default == DEFAULTS.imgsz
    from yolo_attn.evaluation import compare, evaluate
    from yolo_attn.evaluation.options import EVAL, EvalOptions
    for fn in (evaluate.run, compare.run):  # heatmap-eval / heatmap-compare: the evaluation's own where they differ
        params = inspect.signature(fn).parameters
        for name in ('imgsz', 'method', 'target', 'layers', 'conf_thres', 'iou_thres'):
            assert params[name].default == getattr(DEFAULTS, name), (fn.__module__, name)
        for name in EvalOptions.__dataclass_fields__:
            if name in params:
                assert params[name].default == getattr(EVAL, name), (fn.__module__, name)
    for name in ('steps', 'baseline', 'batch', 'match_iou', 'protocol', 'box_multiple'):
        assert inspect.signature(Perturber).parameters[name].default == getattr(EVAL, name), name


@pytest.mark.parametrize('command, argv', [
    ('heatmap', ['--weights', 'w.pt', '--source', 'x']),
    ('heatmap-eval', ['--weights', 'w.pt', '--data', 'd.yaml']),
    ('heatmap-compare', ['--weights', 'a.pt', 'b.pt', '--source', 'x']),
])
def test_every_flag_default_is_its_options_field(command, argv):
    """Each flag's default is read from the one place it is written: the command family's options
    object, the figure style, the run-folder rule; a flag whose default differs fails here."""
    from yolo_attn.cli import make_parser
    from yolo_attn.evaluation.options import EVAL
    from yolo_attn.guards.paths import PROJECTS, RUN_NAME
    from yolo_attn.heatmaps.style import Style
    args = vars(make_parser(command).parse_args([command, *argv]))
    homes = [({'project': PROJECTS[command], 'name': RUN_NAME}, 'paths')]
    if command != 'heatmap':
        homes.append((vars(EVAL), 'EVAL'))  # the evaluation's own (max_det, batch, device, ...) first
    homes += [({k: getattr(DEFAULTS, k) for k in HeatmapOptions.__dataclass_fields__}, 'DEFAULTS'),
              ({k: getattr(Style, k) for k in Style.__dataclass_fields__}, 'Style')]
    checked = 0
    for dest, value in args.items():
        home = next(((h, where) for h, where in homes if dest in h), None)
        if home is not None:
            assert value == home[0][dest], f'--{dest}: default {value!r}, {home[1]} says {home[0][dest]!r}'
            checked += 1
    assert checked >= 12


def test_options_are_keyword_only_frozen_and_checked():
    with pytest.raises(TypeError):
        HeatmapOptions(640)  # keyword-only
    with pytest.raises(TypeError, match="unknown heatmap option 'conf_thresh' .*did you mean conf_thres"):
        HeatmapOptions.of(conf_thresh=0.5)
    o = HeatmapOptions.of(method='gradcam', classes=[2, 0])
    assert o.classes == (2, 0) and o.method == 'gradcam' and o.max_det == DEFAULTS.max_det
    with pytest.raises(AttributeError):  # frozen (dataclasses.FrozenInstanceError)
        o.method = 'layercam'
    assert HeatmapOptions.of(o, max_det=5) == HeatmapOptions(method='gradcam', classes=(2, 0), max_det=5)
    assert o.nms() == dict(conf_thres=DEFAULTS.conf_thres, iou_thres=DEFAULTS.iou_thres, classes=[2, 0],
                           agnostic=False, max_det=DEFAULTS.max_det)


@pytest.mark.parametrize('change, python, flag', [
    (dict(method='nope'), "unknown method 'nope'", "unknown --method 'nope'"),
    (dict(target='box'), "unknown target 'box'", "unknown --target 'box'"),
    (dict(conf_thres=2.0), 'conf_thres 2.0: must be between 0 and 1', '--conf-thres 2.0: must be between 0 and 1'),
    (dict(max_det=0), 'max_det 0: must be a whole number >= 1', '--max-det 0: must be a whole number >= 1'),
])
def test_library_errors_name_the_option_and_the_cli_the_flag(change, python, flag):
    with pytest.raises(ValueError) as e:  # a plain ValueError for Python callers
        HeatmapOptions.of(**change)
    assert str(e.value).startswith(python) and '--' not in str(e.value)
    assert isinstance(e.value, OptionError) and e.value.cli_message().startswith(flag)


def test_explain_is_keyword_only_and_its_errors_speak_python(ws):
    from yolo_attn.heatmaps import explain
    with pytest.raises(TypeError):
        next(explain(ws / 'w.pt', ws / 'ds' / 'images' / 'val', WS_IMGSZ))
    with pytest.raises(ValueError) as e:
        next(explain(ws / 'w.pt', ws / 'nowhere', imgsz=WS_IMGSZ))
    assert str(e.value).startswith('source ') and 'nowhere' in str(e.value) and '--source' not in str(e.value)
    with pytest.raises(ValueError) as e:
        next(explain(ws / 'w.pt', ws / 'ds' / 'images' / 'val', imgsz=WS_IMGSZ, layers='4,99'))
    assert str(e.value).startswith('layers [99]: layer indices must be') and '--layers' not in str(e.value)


@pytest.mark.parametrize('argv, line', [
    (['--conf-thres', '2'], 'yolo-attn heatmap: error: --conf-thres 2.0: must be between 0 and 1'),
    (['--layers', 'backbon'], "yolo-attn heatmap: error: --layers 'backbon': unknown role 'backbon' (did you mean "
                              'backbone?)'),
    (['--alpha', '3'], 'yolo-attn heatmap: error: --alpha 3.0: the map weight must be between 0 and 1'),
])
def test_cli_lines_name_the_flag(ws, capsys, argv, line):
    from yolo_attn.cli import main
    code = main(['heatmap', '--weights', str(ws / 'w.pt'), '--source', str(ws / 'ds' / 'images' / 'val'),
                 '--imgsz', str(WS_IMGSZ), '--project', str(ws / 'never'), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(line), err
    assert not (ws / 'never').exists()  # refused before any folder is made


def test_attention_maps_come_from_the_heatmaps_own_forward(ws):
    """``attention_maps=True`` adds no forward: one per image (batch 1), with or without it, and the
    gates equal those of a forward of their own (``AttentionMaps.__call__``)."""
    from yolo_attn.heatmaps import explain, load_model
    from yolo_attn.heatmaps.api import letterbox_tensor
    from yolo_attn.heatmaps.attention_maps import AttentionMaps
    from yolo_attn.heatmaps.layers import structure
    model = load_model(ws / 'w.pt')
    structure(model)  # the layer roles' one probe forward (cached per model), before counting
    calls = []
    hook = model.model[0].register_forward_pre_hook(lambda *a: calls.append(1))
    folder = ws / 'ds' / 'images' / 'val'
    try:
        plain = list(explain(model, folder, imgsz=WS_IMGSZ, conf_thres=0.05, max_det=3))
        n_plain, calls[:] = len(calls), []
        results = list(explain(model, folder, imgsz=WS_IMGSZ, conf_thres=0.05, max_det=3, attention_maps=True))
        n_gates = len(calls)
    finally:
        hook.remove()
    assert n_plain == n_gates == len(results) == len(plain) == 3  # one forward per image, gates included
    assert all(r.attention_maps is None for r in plain)
    for r in results:
        x = letterbox_tensor(r.image, WS_IMGSZ, int(model.stride.max()))[None]
        own = AttentionMaps(model)(x, r.image)
        assert [g.layer for g in r.attention_maps] == [g.layer for g in own] == [5, 8, 12]
        for a, b in zip(r.attention_maps, own):
            assert a.map.shape == r.shape and a.stride == b.stride
            np.testing.assert_allclose(a.map, b.map, atol=1e-5, rtol=0)
            assert a.gate_min == pytest.approx(b.gate_min, abs=1e-5)
            assert a.gate_max == pytest.approx(b.gate_max, abs=1e-5)
