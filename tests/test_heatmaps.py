"""Per-detection heatmaps: every detection mapped, same result as pytorch-grad-cam, same boxes as detect."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import WS_IMGSZ, run_cli
from yolo_attn.heatmaps import ScoreTarget, explain, load_model
from yolo_attn.heatmaps.methods import CAM_CLASSES, cam_class
from yolo_attn.heatmaps import run as heatmap_run
from yolo_attn.heatmaps.predictions import PredictionsOnly
from yolo_attn.heatmaps.api import open_source

IMGSZ = WS_IMGSZ  # the workspace fixture `ws` (conftest.py): random yolov5n-cbam, shapes images


def images(ws):
    return sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))


KW = dict(imgsz=IMGSZ, conf_thres=0.05, iou_thres=0.45, max_det=30)


def test_every_detection_gets_a_non_constant_map_on_all_heads(ws):
    results = list(explain(ws / 'w.pt', images(ws)[0], **{**KW, 'max_det': 300}))
    dets = [d for r in results for d in r.detections]
    assert len(results) == 1 and len(dets) >= 100  # the test is about *every* detection
    assert {d.level for d in dets} == {0, 1, 2}
    for d in dets:
        assert not d.constant and d.map.max() > d.map.min()
        assert d.map.shape == results[0].shape and d.map.dtype == np.float32
        assert 0 <= d.energy_in_box <= 1


@pytest.mark.parametrize('method', list(CAM_CLASSES))
def test_fast_path_equals_pytorch_grad_cam(ws, method):
    from yolov5.utils.segment.general import scale_image
    model = load_model(ws / 'w.pt')
    path = images(ws)[0]
    kw = {**KW, 'max_det': 10, 'combine': 'mean'}  # cam() aggregates by the mean (the default rule is tanh)
    det = next(d for r in explain(model, path, method=method, **kw) for d in r.detections if d.level == 2)
    # a stride-32 detection reaches every Detect input (the stride-8 one through the PAN path)
    for layer in model.model[-1].f if method == 'elementwise' else model.model[-1].f[:1]:
        ours = next(d for r in explain(model, path, method=method, layers=[layer], **kw) for d in r.detections
                    if d.index == det.index)
        _, im, im0, _, _ = next(iter(open_source(path, IMGSZ, int(model.stride.max()))))
        x = torch.from_numpy(im)[None].float() / 255
        cam = cam_class(method)(PredictionsOnly(model), [model.model[layer]])
        cam.compute_input_gradient = True  # fused weights do not require grad; let activations carry it
        ref = cam(x, targets=[ScoreTarget(det.index, det.cls)])[0]
        ref = scale_image(x.shape[2:], ref, im0.shape)[..., 0]
        np.testing.assert_allclose(ours.map, ref, atol=1e-5, rtol=0)


def test_boxes_equal_detect(ws):
    out = run_cli('detect', '--weights', ws / 'w.pt', '--source', images(ws)[0], '--imgsz', IMGSZ, '--conf-thres',
                  '0.05', '--max-det', '30', '--save-txt', '--save-conf', '--device', 'cpu', '--project',
                  ws / 'det', cwd=ws)
    assert out.returncode == 0, out.stderr[-2000:]
    label = next((ws / 'det' / 'exp' / 'labels').glob('*.txt'))
    theirs = np.loadtxt(label, ndmin=2)  # cls xc yc w h conf, normalised by detect.py
    result = next(explain(ws / 'w.pt', images(ws)[0], **KW))
    h, w = result.shape
    ours = np.array([[d.cls, (d.box[0] + d.box[2]) / 2 / w, (d.box[1] + d.box[3]) / 2 / h,
                      (d.box[2] - d.box[0]) / w, (d.box[3] - d.box[1]) / h, d.score] for d in result.detections])
    key = lambda a: a[np.lexsort(a[:, ::-1].T)]
    ours, theirs = key(ours), key(theirs)
    np.testing.assert_allclose(ours[:, :5], theirs[:, :5], atol=2e-6)  # class and box (pixels, rounded)
    np.testing.assert_allclose(ours[:, 5], theirs[:, 5], atol=1e-4)  # detect.py writes 6 digits; grad-mode forward


def test_targets_differ(ws):
    path = images(ws)[0]
    maps = {t: {d.index: d for r in explain(ws / 'w.pt', path, target=t, **KW) for d in r.detections}
            for t in ('conf', 'class', 'score')}
    assert maps['conf'].keys() == maps['class'].keys() == maps['score'].keys()
    for i in maps['score']:
        assert not np.allclose(maps['conf'][i].map, maps['class'][i].map)
        assert not np.allclose(maps['score'][i].map, maps['class'][i].map)


@pytest.mark.parametrize('weights', ['w.pt', 'y11.pt'])  # yolov5 and ultralytics (anchor-free) heads
def test_targets_read_from_their_own_head_equal_the_predictions(uws, weights):
    """The engine reads each score from its head's raw output (``head_row``): same value as on the
    concatenated predictions, and a graph that does not reach the other heads."""
    from yolo_attn.heatmaps.heads import head_for
    from yolo_attn.heatmaps.targets import TARGETS
    model = load_model(uws / weights)
    head = head_for(model)
    x = torch.rand(2, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(0))
    hooks = head.attach()
    with torch.enable_grad():
        x.requires_grad_(True)
        pred, raw = head.outputs(model(x))
    for h in hooks:
        h.remove()
    rows = head.by_anchor(pred, raw)
    grids = [tuple(r.shape[2:4]) for r in raw]
    names = [n for n in TARGETS if head.objectness or n != 'conf']
    assert len(names) == (3 if weights == 'w.pt' else 2)
    for index in (0, 7 * 3 + 5, rows.shape[1] // 2, rows.shape[1] - 1):  # rows on every head
        level, anchor, cell = head.locate(index, grids)
        for name in names:
            target = TARGETS[name]
            for cls in (0, 2):
                on_pred = target(index, cls, head.classes_at)(rows[1])
                on_head = target(0, cls, head.classes_at)(head.head_row(raw, 1, level, anchor, cell))
                # the same sigmoid of the same logit, on a vector vs an element: equal up to float32 rounding
                # (a vectorised kernel may differ from the scalar one by an ulp, e.g. on AVX2)
                torch.testing.assert_close(on_head, on_pred, rtol=1e-6, atol=0, msg=str((name, index, cls)))
                reach = torch.autograd.grad(on_head, raw, retain_graph=True, allow_unused=True)
                assert [g is not None for g in reach] == [i == level for i in range(len(raw))]


def test_class_filter_and_zero_detections(ws, tmp_path):
    only = [d.cls for r in explain(ws / 'w.pt', images(ws)[0], classes=[2], **KW) for d in r.detections]
    assert only and set(only) == {2}
    m = heatmap_run(weights=ws / 'w.pt', source=images(ws)[0], imgsz=IMGSZ, conf_thres=0.99, project=tmp_path)
    save_dir = Path(m['save_dir'])
    manifest = json.loads((save_dir / 'heatmaps.json').read_text())
    assert manifest['images'][0]['detections'] == []
    assert Path(manifest['images'][0]['overview']).is_file()


def test_cli_outputs_manifest_maps_and_never_touches_old_runs(ws):
    old = ws / 'runs' / 'heatmap' / 'exp'
    old.mkdir(parents=True)
    (old / 'mine.png').write_bytes(b'keep')
    out = run_cli('heatmap', '--weights', 'w.pt', '--source', 'ds/images/val', '--imgsz', IMGSZ, '--conf-thres',
                  '0.05', '--max-det', '10', '--save-maps', '--renorm-in-box', cwd=ws)
    assert out.returncode == 0, out.stderr[-2000:]
    assert [p.name for p in old.iterdir()] == ['mine.png'] and (old / 'mine.png').read_bytes() == b'keep'
    new = ws / 'runs' / 'heatmap' / 'exp2'
    manifest = json.loads((new / 'heatmaps.json').read_text())
    assert len(manifest['images']) == 3
    for image in manifest['images']:
        assert (ws / image['overview']).is_file()
        for d in image['detections']:
            png, npy = ws / d['png'], ws / d['npy']
            assert png.is_file() and npy == png.with_suffix('.npy')
            m = np.load(npy)
            assert m.dtype == np.float32 and m.shape == (image['height'], image['width'])
            x1, y1, x2, y2 = (int(round(v)) for v in d['box_xyxy'])
            assert abs(m[y1:y2, x1:x2].sum() - m.sum()) < 1e-3  # --renorm-in-box: zero outside the box
            for key in ('class_name', 'objectness', 'class_prob', 'score', 'head_level', 'target', 'method',
                        'layers', 'energy_in_box', 'constant_map'):
                assert key in d
    again = run_cli('heatmap', '--weights', 'w.pt', '--source', 'ds/images/val', '--name', 'exp', '--exist-ok',
                    cwd=ws)
    assert again.returncode == 2 and 'already holds results' in again.stderr


def test_unusual_images(ws, tmp_path):
    src = cv2.imread(str(images(ws)[0]))
    folder = tmp_path / 'bilder_ä_画像'
    folder.mkdir()
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(src, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / 'rgba.png'), cv2.cvtColor(src, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / 'deep16.png'), src.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / 'wide_é.jpg'), cv2.resize(src, (IMGSZ * 2, IMGSZ // 2)))
    results = {Path(r.path).name: r for r in explain(ws / 'w.pt', folder, **KW)}
    assert set(results) == {'gray.png', 'rgba.png', 'deep16.png', 'wide_é.jpg'}
    assert results['wide_é.jpg'].shape == (IMGSZ // 2, IMGSZ * 2)
    for name in ('gray.png', 'rgba.png', 'deep16.png'):  # same content as images[0], which has detections
        assert results[name].detections, name
    for r in results.values():
        assert all(d.map.shape == r.shape for d in r.detections)


def test_sources_video_list_and_glob(ws, tmp_path):
    """The inputs detect.py takes: a video (every ``vid_stride``-th frame), a .txt list, a glob."""
    files = images(ws)
    frame = cv2.imread(str(files[0]))
    video = tmp_path / 'clip.mp4'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 5, frame.shape[1::-1])
    for _ in range(6):
        writer.write(frame)
    writer.release()
    frames = list(explain(ws / 'w.pt', video, vid_stride=2, **KW))
    assert len(frames) == 3 and all(r.path == str(video) and r.shape == frame.shape[:2] for r in frames)
    assert all(r.detections for r in frames)
    listing = tmp_path / 'list.txt'
    listing.write_text(f'{files[0]}\n{files[2]}\n')
    assert [Path(r.path).name for r in explain(ws / 'w.pt', listing, **KW)] == [files[0].name, files[2].name]
    pattern = str(ws / 'ds' / 'images' / 'val' / '*.jpg')
    assert sorted(Path(r.path).name for r in explain(ws / 'w.pt', pattern, **KW)) == [f.name for f in files]


def test_bad_input_lines(ws, cli):
    out = cli('heatmap', '--weights', 'w.pt', '--source', 'nowhere', cwd=ws)
    assert out.returncode == 2 and 'nowhere' in out.stderr.strip().splitlines()[-1]
    out = cli('heatmap', '--weights', 'w.pt', '--source', 'ds/images/val', '--layers', '99', cwd=ws)
    assert out.returncode == 2 and '--layers [99]: layer indices must be 0..26' in out.stderr
    out = cli('heatmap', '--weights', 'missing.pt', '--source', 'ds/images/val', cwd=ws)
    assert out.returncode == 2 and 'weights not found: missing.pt' in out.stderr


@pytest.mark.parametrize('method', ['elementwise', 'gradcam++'])
def test_packed_backward_passes_give_the_same_maps(ws, method):
    """Detections with disjoint gradient windows share one backward (packing.py); the maps must not change."""
    from yolo_attn.heatmaps.engine import HeatmapEngine
    model = load_model(ws / 'w.pt')
    _, im, im0, _, _ = next(iter(open_source(images(ws)[0], IMGSZ, int(model.stride.max()))))
    x = torch.from_numpy(im)[None].float() / 255
    runs = {}
    for pack in (False, True):
        engine = HeatmapEngine(model, method=method, layers='detect', conf_thres=0.05, max_det=300, pack=pack)
        runs[pack] = (engine(x, [im0], ['a'])[0].detections, engine.backward_passes, engine.pack)
    (plain, n_plain, packed_plain), (packed, n_packed, packable) = runs[False], runs[True]
    assert packable and not packed_plain
    assert len(plain) >= 100 and {d.level for d in plain} == {0, 1, 2}
    assert n_plain == len(plain) and n_packed < 0.75 * len(plain)  # shared backward passes (probes included)
    for a, b in zip(plain, packed):
        assert a.index == b.index
        np.testing.assert_allclose(b.map, a.map, atol=1e-6, rtol=0)


def test_packing_is_off_where_gradients_are_not_local(ws):
    """A max-pool (SPPF) on the path from the target layer: gradient windows depend on the data."""
    from yolo_attn.heatmaps.engine import HeatmapEngine
    from yolo_attn.heatmaps.packing import packable
    model = load_model(ws / 'w.pt')
    assert packable(model, model.model[-1].f)
    sppf = next(i for i, m in enumerate(model.model) if type(m).__name__ == 'SPPF')
    assert not packable(model, [sppf - 1]) and not HeatmapEngine(model, layers=[sppf - 1]).pack
    assert not HeatmapEngine(model, layers='level').pack  # per-head-level layers: no shared window probe


def test_default_layers_equal_pytorch_grad_cam_per_layer_and_combined(ws):
    """The default (``layers.DEFAULT``, ``combine.DEFAULT_RULE``): each layer's map is exactly
    pytorch-grad-cam's for that layer and detection, and the heatmap is the combination rule applied
    to exactly those maps, for detections of every head level."""
    from yolov5.utils.segment.general import scale_image
    from yolo_attn.heatmaps.combine import DEFAULT_RULE, combine_layers
    from yolo_attn.heatmaps.engine import HeatmapEngine
    from yolo_attn.heatmaps.methods import DEFAULT_METHOD
    from yolo_attn.heatmaps.layers import resolve
    model = load_model(ws / 'w.pt')
    plan = resolve(model)
    _, im, im0, _, _ = next(iter(open_source(images(ws)[0], IMGSZ, int(model.stride.max()))))
    x = torch.from_numpy(im)[None].float() / 255
    engine = HeatmapEngine(model, conf_thres=0.05, max_det=300)
    dets = engine(x, [im0], ['a'])[0].detections
    picked = [next(d for d in dets if d.level == level) for level in range(len(plan.per_level))]
    for d in picked:
        ref = []
        for layer in plan.for_level(d.level):
            cam = cam_class(DEFAULT_METHOD)(PredictionsOnly(model), [model.model[layer]])
            cam.compute_input_gradient = True
            whole = cam(x, targets=[ScoreTarget(d.index, d.cls)])[0]  # one layer: renormalised by its aggregation
            per_layer = cam.compute_cam_per_layer(x, [ScoreTarget(d.index, d.cls)], False)[0][0, 0]  # before it
            cam.activations_and_grads.release()
            np.testing.assert_allclose(cam.aggregate_multi_layers([per_layer[None, None]])[0], whole, atol=1e-6, rtol=0)
            ref.append(per_layer)
        ours = {}
        pred, raw, acts = engine.forward(x)
        det = torch.zeros(1, 6)
        det[0, 5] = d.cls
        for ks, layers, maps in engine.layer_maps(raw, acts, 0, det, torch.tensor([d.index]), x,
                                                  [(d.level, d.anchor, d.cell)]):
            ours = dict(zip(layers, maps[0]))
        assert list(ours) == plan.for_level(d.level)
        for layer, r in zip(ours, ref):
            np.testing.assert_allclose(ours[layer], r, atol=1e-5, rtol=0)  # each layer: grad-cam's own map
        combined = combine_layers(np.stack(ref)[None], DEFAULT_RULE, engine.cam)[0]
        np.testing.assert_allclose(d.map, scale_image(x.shape[2:], combined, im0.shape)[..., 0], atol=1e-5, rtol=0)


def test_combination_rules_on_constructed_maps():
    """``mean`` is pytorch-grad-cam's aggregation; ``gmean`` keeps only what every layer finds salient:
    a coarse layer's halo around the object is cut by the fine layer, a fine-layer response off the
    coarse layer's object is vetoed; with one layer it is that layer's map."""
    from pytorch_grad_cam import GradCAMElementWise
    from yolo_attn.heatmaps.combine import RULES, combine_layers
    yy, xx = np.mgrid[0:64, 0:64]
    fine = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 30.0)  # the object
    fine[5:9, 5:9] = 0.9  # a fine-layer response elsewhere
    coarse = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 400.0)  # wide halo around the object
    maps = np.stack([fine, coarse])[None].astype(np.float32)
    cam = GradCAMElementWise(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)), [])
    mean = combine_layers(maps, 'mean', cam)[0]
    np.testing.assert_allclose(mean, cam.aggregate_multi_layers([maps[:, :1], maps[:, 1:]])[0], atol=0)
    gmean = combine_layers(maps, 'gmean')[0]
    expected = np.sqrt(fine * coarse)
    np.testing.assert_allclose(gmean, (expected - expected.min()) / (expected.max() - expected.min() + 1e-7),
                               atol=1e-6)
    box = (slice(26, 39), slice(26, 39))
    share = lambda m: m[box].sum() / m.sum()
    assert share(gmean) > share(mean) + 0.1  # the halo is cut
    assert gmean[6, 6] < 0.25 < mean[6, 6]  # the off-object fine response is vetoed
    one = combine_layers(maps[:, :1], 'gmean')[0]
    np.testing.assert_allclose(one, (fine - fine.min()) / (fine.max() - fine.min() + 1e-7), atol=1e-6)
    silent = np.stack([fine, np.zeros_like(coarse)])[None].astype(np.float32)  # no gradient reached layer 2
    np.testing.assert_allclose(combine_layers(silent, 'gmean')[0], one, atol=1e-6)  # left out, not a zero product
    assert set(RULES) == {'tanh', 'mean', 'gmean'}
    with pytest.raises(ValueError, match='unknown layer combination'):
        combine_layers(maps, 'median')


def test_tanh_rule_is_layercam_scaling_then_mean():
    """``tanh`` (the default): each layer's map through LayerCAM's ``tanh(2 M / max M)``, averaged,
    min-max normalised. One layer keeps its pixel order (tanh increases) but its weak on-object
    responses rise towards the peak: more of the object is above half the maximum, the box's
    energy share falls a little."""
    from yolo_attn.heatmaps.combine import DEFAULT_RULE, combine_layers
    assert DEFAULT_RULE == 'tanh'
    yy, xx = np.mgrid[0:64, 0:64]
    peaky = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 20.0)  # a fine layer's peaky map of the object
    peaky[30:35, 40] = 0.3  # weaker responses on the object's edge
    coarse = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 300.0)
    maps = np.stack([peaky, coarse])[None].astype(np.float32)
    got = combine_layers(maps, 'tanh')[0]
    expected = (np.tanh(2 * peaky) + np.tanh(2 * coarse)) / 2
    np.testing.assert_allclose(got, (expected - expected.min()) / (expected.max() - expected.min() + 1e-7),
                               atol=1e-6)
    one = combine_layers(maps[:, :1], 'tanh')[0]
    assert (np.diff(one.ravel()[np.argsort(peaky.ravel(), kind='stable')]) >= -1e-7).all()  # same order
    box = (slice(24, 41), slice(24, 41))
    above = lambda m: (m[box] >= 0.5 * m.max()).mean()
    share = lambda m: m[box].sum() / m.sum()
    assert above(one) > above(peaky) + 0.1  # coverage up
    assert share(one) < share(peaky)  # energy spread a little
    assert one[32, 40] > peaky[32, 40]  # the weak edge response lifted
