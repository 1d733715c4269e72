"""Per-detection heatmaps on ultralytics models (YOLO11 with NMS, YOLO26 NMS-free with end2end on and
off): every kept detection mapped to its own anchor, maps equal to pytorch-grad-cam's, layer roles on
every stock detect YAML, the CLI on a user's checkpoint, a cross-backend compare, payloads refused."""

import json

import numpy as np
import pytest
import torch

from conftest import WS_IMGSZ, run_cli
from test_ultralytics_parsing import STOCK, load
from yolo_attn.heatmaps import ScoreTarget, explain, load_model
from yolo_attn.heatmaps.api import open_source
from yolo_attn.heatmaps.engine import HeatmapEngine
from yolo_attn.heatmaps.methods import cam_class
from yolo_attn.heatmaps.predictions import PredictionsOnly

KW = dict(imgsz=WS_IMGSZ, conf_thres=0.05, iou_thres=0.45, max_det=30)
CASES = [('y11.pt', None), ('y26.pt', True), ('y26.pt', False)]  # (checkpoint, end2end)


def first_image(ws, model):
    _, im, im0, _, _ = next(iter(open_source(sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0], WS_IMGSZ,
                                             int(model.stride.max()))))
    return torch.from_numpy(im)[None].float() / 255, im0


@pytest.mark.parametrize('weights,end2end', CASES)
def test_every_kept_detection_is_read_at_its_own_anchor(uws, weights, end2end):
    """The anchor each kept detection is mapped to decodes to that detection's box and carries its score
    (a neighbouring anchor would not): checked against the head's own decoded output."""
    model = load_model(uws / weights, end2end=end2end)
    detect = model.model[-1]
    assert detect.end2end == bool(end2end)
    engine = HeatmapEngine(model, **KW)
    x, _ = first_image(uws, model)
    pred, raw, _ = engine.forward(x)
    (det, anchors), = engine.head.nms(pred, raw, **engine.options.nms())
    # an NMS-free head may keep one anchor for two classes (its top-k runs over anchor-class pairs)
    assert len(det) >= 5 and len(set(zip(anchors.tolist(), det[:, 5].tolist()))) == len(det)
    grids = [tuple(r.shape[2:4]) for r in raw]
    where = [engine.head.locate(int(a), grids) for a in anchors]
    assert len({w[0] for w in where}) >= 2  # detections on more than one head level
    with torch.no_grad():
        detect.shape = None
        _, preds = model(x)
        branch = preds['one2one'] if detect.end2end else preds.get('one2many', preds)
        boxes = detect._get_decode_boxes(branch)[0]  # (4, anchors), xywh (NMS) or xyxy (end2end)
    for k, a in enumerate(anchors.tolist()):
        box = boxes[:, a]
        if not detect.end2end:
            box = torch.cat((box[:2] - box[2:] / 2, box[:2] + box[2:] / 2))
        torch.testing.assert_close(box, det[k, :4], atol=1e-3, rtol=0)
        objectness, prob = engine.head.values(pred, raw, 0, a, where[k], int(det[k, 5]))
        assert objectness is None and abs(prob - float(det[k, 4])) < 1e-5


@pytest.mark.parametrize('weights,method', [('y11.pt', 'gradcam'), ('y11.pt', 'elementwise'), ('y26.pt', 'gradcam')])
def test_each_layer_map_equals_pytorch_grad_cam(uws, weights, method):
    from yolov5.utils.segment.general import scale_image
    model = load_model(uws / weights)
    path = sorted((uws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    kw = {**KW, 'combine': 'mean'}
    det = max((d for r in explain(model, path, method=method, **kw) for d in r.detections), key=lambda d: d.level)
    x, im0 = first_image(uws, model)
    for layer in model.model[-1].f:  # the coarsest detection: every Detect input reaches it
        ours = next(d for r in explain(model, path, method=method, layers=[layer], **kw) for d in r.detections
                    if d.index == det.index)
        cam = cam_class(method)(PredictionsOnly(model), [model.model[layer]])
        cam.compute_input_gradient = True
        ref = cam(x, targets=[ScoreTarget(det.index, det.cls, classes_at=4)])[0]
        np.testing.assert_allclose(ours.map, scale_image(x.shape[2:], ref, im0.shape)[..., 0], atol=1e-5, rtol=0)


def test_conf_target_is_refused_for_anchor_free_heads(uws):
    from yolo_attn.errors import OptionError
    with pytest.raises(OptionError, match='no objectness'):
        load_model(uws / 'y11.pt', target='conf')
    scores = {t: [d.score for r in explain(uws / 'y11.pt', uws / 'ds' / 'images' / 'val', target=t, **KW)
                  for d in r.detections] for t in ('class', 'score')}
    assert scores['class'] == scores['score'] and scores['class']


def test_layer_roles_resolve_on_every_stock_and_shipped_detect_yaml():
    from yolo_attn.blocks.plugins import registered
    from yolo_attn.config.backend import build
    from yolo_attn.config.files import load_cfg, shipped_ultralytics_dir
    from yolo_attn.heatmaps.layers import level_layers, resolve, roles, structure
    blocks = tuple(registered().values())
    torch.set_num_threads(1)
    models = [(name, build(load(name), nc=3)) for name in STOCK]
    models += [(p.stem, build(load_cfg(p), nc=3)) for p in sorted(shipped_ultralytics_dir().glob('*.yaml'))]
    for name, model in models:
        r, s = roles(model), structure(model)
        detect = model.model[-1]
        assert r['detect'] == list(detect.f) and r['backbone'], name
        assert all(i < s.backbone_end for i in r['backbone']) and all(j > s.backbone_end - 1 for j in r['neck']), name
        assert r['attention'] == [i for i, m in enumerate(model.model) if isinstance(m, blocks)], name
        for level, layers in enumerate(level_layers(model)):
            assert layers and all(s.strides[j] <= s.strides[detect.f[level]] for j in layers), name
        plan = resolve(model)  # the default
        assert len(plan.per_level) == len(detect.f), name
    assert sum(bool(roles(m)['attention']) for _, m in models) >= 15


def test_heatmap_compare_across_backends(uws, tmp_path):
    """A yolov5 and a YOLO11 checkpoint of the same classes, the same objects side by side."""
    out = run_cli('heatmap-compare', '--weights', uws / 'w.pt', uws / 'y11.pt', '--source',
                  uws / 'ds' / 'images' / 'val', '--imgsz', WS_IMGSZ, '--max-images', 1, '--max-det', 3, '--steps', 2,
                  '--no-html', cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / 'runs' / 'heatmap-compare' / 'exp'
    manifest = json.loads((run / 'manifest.json').read_text())
    assert manifest['models'] == ['w', 'y11']
    import csv
    rows = list(csv.DictReader((run / 'objects.csv').open()))
    assert {r['model'] for r in rows} == {'w', 'y11'}
    objects = {(r['image'], r['object']) for r in rows}
    assert len(list(run.glob('*.png'))) == len(objects) >= 1 and len(rows) == 2 * len(objects)  # a panel per object
    assert any(r['missed'] == '0' for r in rows if r['model'] == 'y11')  # the YOLO11 map is in some panel


def test_a_payload_in_an_ultralytics_checkpoint_is_refused_by_every_heatmap_command(uws, tmp_path, monkeypatch,
                                                                                       capsys):
    from bad_input import run_in_process
    marker = tmp_path / 'ran'
    ckpt = torch.load(uws / 'y11.pt', weights_only=False)

    class Payload:
        def __reduce__(self):
            import os
            return os.system, (f'touch {marker}',)

    ckpt['extra'] = Payload()
    torch.save(ckpt, tmp_path / 'bad.pt')
    val = uws / 'ds' / 'images' / 'val'
    for args in (('heatmap', '--weights', 'bad.pt', '--source', val),
                 ('heatmap-eval', '--weights', 'bad.pt', '--data', uws / 'ds' / 'shapes.yaml', '--max-images', 1),
                 ('heatmap-compare', '--weights', uws / 'w.pt', 'bad.pt', '--source', val)):
        rc, lines, err = run_in_process(tmp_path, monkeypatch, capsys, *args, '--imgsz', WS_IMGSZ)
        assert rc == 2 and len(lines) == 1, (args[0], err[-2000:])
        assert lines[0].startswith(f'yolo-attn {args[0]}: error:') and 'bad.pt' in lines[0] and 'Traceback' not in err
        assert not marker.exists() and not (tmp_path / 'runs').exists()


def test_attention_maps_of_our_blocks_inside_an_ultralytics_model(uws):
    result = next(explain(uws / 'y11.pt', sorted((uws / 'ds' / 'images' / 'val').glob('*.jpg'))[0],
                          attention_maps=True, **KW))
    gates = result.attention_maps
    assert [g.block for g in gates] == ['CBAM'] * 3 and [g.stride for g in gates] == [8, 16, 32]
    for g in gates:  # CBAM's spatial gate, at the original image's size
        assert g.map.shape == result.shape and g.map.max() > g.map.min() and 0 < g.gate_min < g.gate_max < 1


def test_nms_free_flag_explains_the_one_to_one_branch(uws, tmp_path):
    from yolo_attn.heatmaps import run as heatmap_run
    image = sorted((uws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    runs = {free: heatmap_run(uws / 'y26.pt', image, nms_free=free, project=tmp_path, html=False, **KW)
            for free in (False, True)}
    rows = {free: [(d['raw_index'], d['class_id']) for d in m['images'][0]['detections']] for free, m in runs.items()}
    for free in (False, True):
        want = [(d.index, d.cls) for r in explain(load_model(uws / 'y26.pt', end2end=free), image, **KW)
                for d in r.detections]
        assert rows[free] == want and want
    assert rows[True] != rows[False]


@pytest.mark.parametrize('weights', ['y11.pt', 'w.pt'])
def test_nms_free_on_a_model_without_such_a_head_is_one_line(uws, tmp_path, monkeypatch, capsys, weights):
    from bad_input import run_in_process
    rc, lines, err = run_in_process(tmp_path, monkeypatch, capsys, 'heatmap', '--weights', uws / weights, '--source',
                                    uws / 'ds' / 'images' / 'val', '--nms-free')
    assert rc == 2 and len(lines) == 1 and lines[0].startswith('yolo-attn heatmap: error: --nms-free cannot be used')
    assert not (tmp_path / 'runs').exists()


def test_a_segmentation_checkpoint_is_refused_in_one_line(tmp_path, monkeypatch, capsys, uws):
    from bad_input import run_in_process
    from ultralytics.nn.tasks import SegmentationModel
    torch.save({'model': SegmentationModel('yolo11n-seg.yaml', nc=5, verbose=False), 'train_args': {}},
               tmp_path / 'seg.pt')
    rc, lines, err = run_in_process(tmp_path, monkeypatch, capsys, 'heatmap', '--weights', 'seg.pt', '--source',
                                    uws / 'ds' / 'images' / 'val')
    assert rc == 2 and len(lines) == 1 and 'Segmentation model' in lines[0] and 'detect models' in lines[0], err[-2000:]
    assert 'Traceback' not in err and not (tmp_path / 'runs').exists()
