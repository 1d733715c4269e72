"""Heatmap evaluation: metrics with known answers, deletion/insertion on a real model, the sanity check,
heatmap-eval and heatmap-compare end to end, bad input."""

import csv
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import SHAPES_NAMES, WS_IMGSZ, random_detector, run_cli
from yolo_attn.cli import main
from yolo_attn.evaluation import auc, energy_pointing_game, pointing_game
from yolo_attn.evaluation.compare import PANEL_HEIGHT, TITLE
from yolo_attn.evaluation.matching import greedy_match
from yolo_attn.evaluation.perturb import (Perturber, baseline_image, channels_last_copy, perturbed, perturbed_steps,
                                         saliency_order, step_counts)
from yolo_attn.evaluation.sanity import RandomisedMaps, randomized_copy
from yolo_attn.heatmaps import explain, load_model

pytestmark = pytest.mark.usefixtures('one_thread')
BOX = (10, 20, 30, 40)  # x1 y1 x2 y2: columns 10..29, rows 20..39
# Scores (sigmoid outputs in [0, 1]) of the same image by two computation paths (the plain model and
# its channels-last copy; oneDNN's NCHW and NHWC kernels, AVX-512 or AVX2) differ by float32
# rounding only: reductions of up to C x k x k ~ 2300 terms per layer in another order, through ~60
# layers, give relative activation errors of order 1e-5 and logit errors of up to ~1e-4 (sigmoid'
# <= 0.25). Measured: 1.4e-5 at most (AVX2, random weights). 1e-4 keeps a margin of 7.
SCORE_TOL = 1e-4


def peak(y, x, shape=(64, 64)):
    cam = np.zeros(shape, np.float32)
    cam[y, x] = 1
    return cam


def test_pointing_game_known_answers():
    assert pointing_game(peak(25, 15), BOX)
    assert pointing_game(peak(20, 10), BOX) and pointing_game(peak(39, 29), BOX)  # first and last pixel inside
    assert not pointing_game(peak(25, 30), BOX) and not pointing_game(peak(40, 15), BOX)  # just outside
    assert not pointing_game(peak(5, 5), BOX)  # argmax outside: a miss
    assert not pointing_game(np.full((64, 64), 0.7, np.float32), BOX)  # constant: nothing to point with
    cam = peak(5, 5) * 0.9
    cam[25, 15] = 1.0  # a weaker blob outside does not matter, the maximum does
    assert pointing_game(cam, BOX)


def test_energy_pointing_game_known_answers():
    inside = np.zeros((64, 64), np.float32)
    inside[20:40, 10:30] = np.random.default_rng(0).random((20, 20))
    assert energy_pointing_game(inside, BOX) == pytest.approx(1.0)
    outside = np.ones((64, 64), np.float32)
    outside[20:40, 10:30] = 0
    assert energy_pointing_game(outside, BOX) == 0.0
    half = peak(25, 15) + peak(5, 5)
    assert energy_pointing_game(half, BOX) == pytest.approx(0.5)
    assert energy_pointing_game(np.zeros((64, 64), np.float32), BOX) == 0.0
    assert energy_pointing_game(np.ones((64, 64), np.float32), BOX) == pytest.approx(400 / 4096)


def test_auc_known_answers():
    assert auc([1, 1]) == 1.0 and auc(np.ones(21)) == pytest.approx(1.0)
    assert auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)
    assert auc([0, 1, 0]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        auc([1])


def test_perturbation_order_and_ends():
    rng = np.random.default_rng(1)
    im = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = baseline_image(im, 'gray')
    cam = rng.random((6, 8)).astype(np.float32)
    order, n = saliency_order(cam), 6 * 8
    assert step_counts(n, 4) == [0, 12, 24, 36, 48]
    assert np.array_equal(perturbed(im, base, order, n), base)  # everything deleted: the baseline image
    assert np.array_equal(perturbed(im, base, order, 0, insert=True), base)
    assert np.array_equal(perturbed(im, base, order, n, insert=True), im)
    changed = (perturbed(im, base, order, 12) != im).any(-1)
    top = cam >= np.sort(cam.ravel())[-12]
    assert np.array_equal(changed, top)  # exactly the 12 most salient pixels are gone
    assert np.array_equal((perturbed(im, base, order, 12, insert=True) != base).any(-1), top)
    counts = step_counts(n, 4)
    for insert in (False, True):  # the incremental images Perturber runs are the same images
        steps = list(perturbed_steps(im, base, order, counts, insert))
        assert len(steps) == len(counts)
        for k, image in zip(counts, steps):
            assert np.array_equal(image, perturbed(im, base, order, k, insert))
    blur = baseline_image(im, 'blur')
    assert blur.shape == im.shape and not np.array_equal(blur, im)
    assert not baseline_image(im, 'black').any()


def test_greedy_matching():
    gt = [[0, 0, 10, 10], [20, 20, 30, 30]]
    dets = [[0, 0, 10, 9], [1, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]
    pairs = greedy_match(dets, [0, 0, 1, 0], [0.5, 0.9, 0.8, 0.99], gt, [0, 0])
    assert pairs == {1: (0, pytest.approx(0.9))}  # best score first; wrong class and no overlap never match
    assert greedy_match(dets[:1], [0], [1.0], [[0, 0, 20, 20]], [0]) == {}  # IoU 0.225 < 0.5


def independent_score(model, image_path, cls, box):
    """The protocol's score the slow, obvious way: detect.py's loading, yolov5's NMS that suppresses
    only identical boxes, then the best same-class box with IoU > 0.5."""
    from yolov5.utils.general import non_max_suppression, scale_boxes
    from yolov5.utils.metrics import box_iou
    from yolo_attn.heatmaps.api import open_source
    _, im, im0, _, _ = next(iter(open_source(image_path, WS_IMGSZ, int(model.stride.max()))))
    x = torch.from_numpy(im)[None].float() / 255
    with torch.no_grad():
        det = non_max_suppression(model(x)[0], 0.001, 0.999, max_det=100000)[0]
    det = det[det[:, 5] == cls]
    boxes = scale_boxes(x.shape[2:], det[:, :4], im0.shape).round()
    iou = box_iou(torch.tensor([box], dtype=boxes.dtype), boxes)[0]
    return float(det[iou > 0.5, 4].max()) if (iou > 0.5).any() else 0.0


def test_channels_last_copy_predicts_the_same_and_leaves_the_model_alone():
    from yolo_attn.demo import pretrained_weights
    model = load_model(pretrained_weights())  # trained weights: random ones amplify float rounding
    fast = channels_last_copy(model)
    convs = [(a, b) for a, b in zip(model.modules(), fast.modules()) if isinstance(a, torch.nn.Conv2d)]
    assert convs and all(a.weight.is_contiguous() and not a.weight.is_contiguous(memory_format=torch.channels_last)
                         for a, _ in convs if a.weight.shape[-1] > 1)
    assert all(b.weight.is_contiguous(memory_format=torch.channels_last) for _, b in convs)
    x = torch.rand(2, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref, out = model(x)[0], fast(x.contiguous(memory_format=torch.channels_last))[0]
    torch.testing.assert_close(out[..., 4:], ref[..., 4:], atol=SCORE_TOL, rtol=0)  # scores
    # boxes, letterbox pixels (up to 320): the same rounding on values ~300x larger; measured 1.4e-4 with AVX2
    torch.testing.assert_close(out[..., :4], ref[..., :4], atol=1e-3, rtol=0)


def test_deletion_of_everything_gives_the_empty_image_score(ws, tmp_path):
    model = load_model(ws / 'w.pt')
    path = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    image = next(explain(model, path, imgsz=WS_IMGSZ, method='gradcam', conf_thres=0.05, max_det=40))
    dets = [d for d in image.detections if (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) >= 64][:3]
    assert len(dets) == 3
    p = Perturber(model, WS_IMGSZ, steps=2, baseline='gray', batch=4, protocol='image')  # up to every pixel
    curves = p.curves(image.image, [(d.map, d.cls, d.box) for d in dets])
    cv2.imwrite(str(tmp_path / 'empty.png'), baseline_image(image.image, 'gray'))
    half = perturbed(image.image, baseline_image(image.image, 'gray'), saliency_order(dets[0].map),
                     image.image.shape[0] * image.image.shape[1] // 2)
    cv2.imwrite(str(tmp_path / 'half.png'), half)
    for d, c in zip(dets, curves):
        assert c.start == pytest.approx(d.score, abs=SCORE_TOL)  # the unperturbed image: the detection itself
        empty = independent_score(model, tmp_path / 'empty.png', d.cls, d.box)
        assert c.empty == pytest.approx(empty, abs=SCORE_TOL)
        assert c.deletion[-1] * c.start == pytest.approx(c.empty, rel=1e-12)  # all deleted: the empty-image score
        assert c.insertion[0] * c.start == pytest.approx(c.empty, rel=1e-12)
        assert c.deletion[0] == 1 and c.insertion[-1] == 1
    assert any(abs(c.empty - c.start) > 10 * SCORE_TOL for c in curves)  # the perturbation does change the score
    mid = independent_score(model, tmp_path / 'half.png', dets[0].cls, dets[0].box)
    assert curves[0].deletion[1] * curves[0].start == pytest.approx(mid, abs=SCORE_TOL)


def test_randomised_model_maps(ws):
    model = load_model(ws / 'w.pt')
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomized_copy(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # the trained model is untouched
    convs = [(a, b) for a, b in zip(model.modules(), clone.modules()) if isinstance(a, torch.nn.Conv2d)]
    assert convs and all(not torch.equal(a.weight, b.weight) for a, b in convs)
    path = sorted((ws / 'ds' / 'images' / 'val').glob('*.jpg'))[0]
    image = next(explain(model, path, imgsz=WS_IMGSZ, method='gradcam', layers='detect', conf_thres=0.05, max_det=4))
    p = Perturber(model, WS_IMGSZ)
    random = RandomisedMaps(model, 'gradcam', layers='detect')(p.letterbox(image.image)[None], image.image,
                                                               image.detections)
    assert len(random) == len(image.detections) == 4
    assert all(r.shape == d.map.shape and r.dtype == np.float32 for d, r in zip(image.detections, random))
    assert sum(r.max() > r.min() for r in random) >= 3  # random weights still give maps (not all zero)...
    assert all(not np.allclose(r, d.map, atol=1e-3) for d, r in zip(image.detections, random))  # ...other maps


def pseudo_labelled(ws, root):
    """The val images with the model's own large detections as labels: every label has a detection."""
    ds = root / 'pseudo'
    (ds / 'labels' / 'val').mkdir(parents=True)
    shutil.copytree(ws / 'ds' / 'images' / 'val', ds / 'images' / 'val')
    n = 0
    for image in explain(ws / 'w.pt', ds / 'images' / 'val', imgsz=WS_IMGSZ, conf_thres=0.05, max_det=40):
        h, w = image.shape
        big = [d for d in image.detections if (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) >= 64][:2]
        lines = [f'{d.cls} {(d.box[0] + d.box[2]) / 2 / w} {(d.box[1] + d.box[3]) / 2 / h} '
                 f'{(d.box[2] - d.box[0]) / w} {(d.box[3] - d.box[1]) / h}' for d in big]
        (ds / 'labels' / 'val' / f'{Path(image.path).stem}.txt').write_text('\n'.join(lines) + '\n')
        n += len(lines)
    (ds / 'data.yaml').write_text(f'path: .\ntrain: images/val\nval: images/val\nnames: {list(SHAPES_NAMES)}\n')
    return ds, n


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_eval_cli_end_to_end(ws, tmp_path):
    ds, n = pseudo_labelled(ws, tmp_path)
    assert n >= 3
    out = run_cli('heatmap-eval', '--weights', ws / 'w.pt', '--data', ds / 'data.yaml', '--imgsz', WS_IMGSZ,
                  '--conf-thres', '0.05', '--max-det', '40', '--steps', '3', '--method', 'elementwise', 'eigencam',
                  '--sanity-max', '3', '--project', tmp_path / 'runs', cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    save = tmp_path / 'runs' / 'exp'
    rows = read_csv(save / 'results.csv')
    assert len(rows) == 2 * n  # every label is a detection: all matched, for both methods
    assert {r['method'] for r in rows} == {'elementwise', 'eigencam'}
    for r in rows:
        assert r['pointing_game'] in ('0', '1') and 0 <= float(r['energy_pg']) <= 1
        assert float(r['deletion_0']) == 1 and float(r['iou_gt']) >= 0.5 and 'deletion_4' not in r
        area = (round(float(r['x2'])) - round(float(r['x1']))) * (round(float(r['y2'])) - round(float(r['y1'])))
        assert int(r['perturbed_pixels']) == min(2 * area, WS_IMGSZ * WS_IMGSZ)  # the box protocol's budget
        assert float(r['insertion_0']) == pytest.approx(float(r['empty_score']) / float(r['start_score']), rel=1e-5)
    summary = read_csv(save / 'summary.csv')
    for m in ('elementwise', 'eigencam'):
        groups = {s['group'] for s in summary if s['method'] == m}
        assert groups == {'all', 'class', 'level'}
        top = next(s for s in summary if s['method'] == m and s['group'] == 'all')
        pg = 100 * np.mean([float(r['pointing_game']) for r in rows if r['method'] == m])
        assert float(top['pointing_game']) == pytest.approx(pg, rel=1e-5) and int(top['detections']) == n
        assert top['sanity'] in ('pass', 'inconclusive', 'fail') and top['per_detection'] == str(m != 'eigencam')
        levels = [s for s in summary if s['method'] == m and s['group'] == 'level']
        assert levels and all(s['value'] in ('P3', 'P4', 'P5') and s['sanity'] for s in levels)
    sanity = read_csv(save / 'sanity.csv')
    for m in ('elementwise', 'eigencam'):
        mine = [s for s in sanity if s['method'] == m]
        assert mine[0]['level'] == 'all' and int(mine[0]['n']) == 3 == sum(int(s['n']) for s in mine[1:])
        assert {s['level'] for s in mine[1:]} <= {'P3', 'P4', 'P5'}
        for s in mine:
            assert s['verdict'] in ('pass', 'inconclusive', 'fail') and -1 <= float(s['mean_rho_partial']) <= 1
    checked = [r for r in rows if r['sanity_rho']]
    assert len(checked) == 6 and all(r['sanity_rho_partial'] and r['sanity_rho_prior'] for r in checked)
    png = cv2.imread(str(save / 'curves.png'))
    assert png is not None and png.shape[0] > 100
    assert '| elementwise | all | all |' in out.stdout and 'sanity check eigencam:' in out.stdout
    assert 'eigencam: not per-detection' in out.stdout and 'box protocol, 3 steps up to 2 x box area' in out.stdout
    images = len(list((ds / 'images' / 'val').glob('*.jpg')))
    timing = re.search(r'deletion \+ insertion per image: median ([\d.]+) s, max ([\d.]+) s .* up to (\d+) in an image',
                       out.stdout)
    assert timing and 0 < float(timing[1]) <= float(timing[2])
    per_image = [sum(r['image'] == i for r in rows if r['method'] == 'eigencam') for i in {r['image'] for r in rows}]
    assert int(timing[3]) == max(per_image) and images >= len(per_image)


def test_compare_two_models_writes_panels(ws, tmp_path):
    other = random_detector(ws / 'ds')
    with torch.no_grad():
        for conv in other.model[-1].m:  # a slightly different head: different maps, mostly the same boxes
            conv.weight.mul_(1 + 0.05 * torch.randn_like(conv.weight))
    torch.save({'model': other.half(), 'epoch': -1}, tmp_path / 'other.pt')
    out = run_cli('heatmap-compare', '--weights', ws / 'w.pt', tmp_path / 'other.pt', '--source',
                  ws / 'ds' / 'images' / 'val', '--imgsz', WS_IMGSZ, '--conf-thres', '0.3', '--max-det', '4',
                  '--steps', '2', '--method', 'gradcam', '--project', tmp_path / 'runs', cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    save = tmp_path / 'runs' / 'exp'
    objects = read_csv(save / 'objects.csv')
    panels = sorted(save.glob('*.png'))
    assert panels and len(objects) == 2 * len(panels)
    assert {o['model'] for o in objects} == {'w', 'other'} and {o['panel'] for o in objects} == set(map(str, panels))
    for p in panels:
        im = cv2.imread(str(p))
        assert im.shape[0] == PANEL_HEIGHT + TITLE and im.shape[1] > 2 * 20  # two tiles side by side, named
    both = {(o['image'], o['object']) for o in objects} - {(o['image'], o['object']) for o in objects
                                                          if o['missed'] == '1'}
    metrics = read_csv(save / 'metrics.csv')
    assert [m['model'] for m in metrics] == ['w', 'other']
    assert all(int(m['detections']) == len(both) for m in metrics)  # averaged over the objects both detected
    assert [int(m['missed']) for m in metrics] == [sum(o['missed'] == '1' for o in objects if o['model'] == name)
                                                  for name in ('w', 'other')]
    assert all(0 <= float(m['insertion_auc']) for m in metrics)
    for o in objects:
        if o['missed'] == '0':
            assert o['level_name'] in ('P3', 'P4', 'P5') and re.fullmatch(r'layers \d+(,\d+)*', o['layers'])


def test_bad_input_is_one_line(ws, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = tmp_path / 'nolabels'
    shutil.copytree(ws / 'ds' / 'images' / 'val', ds / 'images' / 'val')
    (ds / 'data.yaml').write_text('path: .\ntrain: images/val\nval: images/val\nnames: [a, b, c, d, e]\n')
    out = run_cli('heatmap-eval', '--weights', ws / 'w.pt', '--data', ds / 'data.yaml', cwd=tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and 'none of the 3 images has a label file' in lines[-1]
    assert 'Traceback' not in out.stderr
    state = torch.load(ws / 'w.pt', weights_only=False)
    state['model'].names = {i: f'thing{i}' for i in range(5)}
    torch.save(state, tmp_path / 'renamed.pt')
    for argv, message in (
            (['heatmap-compare', '--weights', str(ws / 'w.pt'), str(tmp_path / 'renamed.pt'), '--source',
              str(ws / 'ds' / 'images' / 'val')], 'needs models trained on the same classes'),
            (['heatmap-compare', '--weights', str(ws / 'w.pt'), '--source', 'x.jpg'], 'give two or more checkpoints'),
            (['heatmap-eval', '--weights', str(tmp_path / 'missing.pt'), '--data', str(ws / 'ds' / 'shapes.yaml')],
             'missing.pt'),
            (['heatmap-eval', '--weights', str(ws / 'w.pt'), '--data', str(ws / 'ds' / 'shapes.yaml'), '--method',
              'gradcam', 'nope'], 'unknown --method nope')):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith(f'yolo-attn {argv[0]}: error:'), err
    assert not (tmp_path / 'runs').exists()  # refused before any run folder is made
