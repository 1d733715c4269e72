"""Deletion/insertion relative to the detection: the budget, seeded tie order, and a constructed case
where a map on the object must beat the same map shifted off it."""

import numpy as np
import pytest

from yolo_attn.evaluation.perturb import (BOX_MULTIPLE, Perturber, baseline_image, perturbation_budget,
                                         perturbed_steps, saliency_order, step_counts)

pytestmark = pytest.mark.usefixtures('one_thread')


def test_budget_is_relative_to_the_box_and_clipped_to_the_image():
    assert perturbation_budget((10, 20, 30, 40), (100, 200)) == round(BOX_MULTIPLE * 400)
    assert perturbation_budget((10, 20, 30, 40), (100, 200), 'box', 3) == 1200
    assert perturbation_budget((10, 20, 30, 40), (100, 200), 'image') == 20000
    assert perturbation_budget((-50, -50, 500, 500), (100, 200)) == 20000  # clipped box, then the image
    assert perturbation_budget((5, 5, 5, 9), (100, 200)) == 1  # an empty box still perturbs a pixel
    with pytest.raises(ValueError, match='unknown protocol'):
        perturbation_budget((0, 0, 1, 1), (4, 4), 'nope')
    assert step_counts(800, 4) == [0, 200, 400, 600, 800]


def test_ties_are_broken_by_a_seeded_random_order_not_row_order():
    cam = np.zeros((40, 50), np.float32)
    cam[30:34, 40:45] = np.arange(20, dtype=np.float32).reshape(4, 5) + 1  # 20 distinct values, the rest 0
    order = saliency_order(cam)
    assert np.array_equal(np.sort(order), np.arange(cam.size))  # a permutation
    assert np.array_equal(cam.ravel()[order[:20]], np.arange(20, 0, -1))  # the salient pixels first, by value
    zeros = order[20:]
    assert np.array_equal(order, saliency_order(cam))  # reproducible
    assert not np.array_equal(order, saliency_order(cam, seed=1))
    first_rows = zeros[:200] // cam.shape[1]  # row order would take rows 0..3 first
    assert first_rows.max() > 20 and len(set(first_rows.tolist())) > 20  # spread over the image
    im = np.full((40, 50, 3), 200, np.uint8)
    deleted = next(perturbed_steps(im, baseline_image(im, 'black'), order, [120]))
    rows = np.flatnonzero((deleted == 0).any(-1).any(1))
    assert len(rows) > 20  # 100 tied pixels deleted from all over the image, not the top two rows


@pytest.fixture(scope='module')
def trained_case(tmp_path_factory):
    """The shipped trained yolov5n (shapes) on a generated shapes image; its most confident
    detection whose box, shifted sideways by its own width plus a margin, lands on no other box."""
    import cv2
    from yolo_attn.data.shapes import generate_shapes
    from yolo_attn.demo import pretrained_weights
    from yolo_attn.heatmaps import explain, load_model
    root = tmp_path_factory.mktemp('faith')
    generate_shapes(root / 'ds', n_train=1, n_val=6, imgsz=320, seed=5, progress=False)
    model = load_model(pretrained_weights())
    for image in explain(model, root / 'ds' / 'images' / 'val', imgsz=320, method='gradcam'):
        h, w = image.shape
        boxes = np.array([d.box for d in image.detections])
        for det in sorted(image.detections, key=lambda d: -d.score):
            x1, y1, x2, y2 = det.box
            bw = x2 - x1
            for dx in (bw + 24, -(bw + 24)):
                if 0 <= x1 + dx and x2 + dx <= w and not any(
                        min(x2 + dx, b[2]) > max(x1 + dx, b[0]) and min(y2, b[3]) > max(y1, b[1]) for b in boxes):
                    if (x2 - x1) * (y2 - y1) >= 600 and det.score > 0.5:
                        cv2.imwrite(str(root / 'used.png'), image.image)
                        return model, image.image, det, dx
    raise AssertionError('the shipped model found no confident detection with free space beside it on the '
                         'fixed generated images (seed 5): the model or the generator changed')


def box_map(shape, box, dx=0):
    """A smooth bump filling the box (moved by ``dx`` pixels), zero elsewhere: many exact zeros."""
    h, w = shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    cam = np.zeros((h, w), np.float32)
    ys, xs = np.mgrid[y1:y2, x1:x2]
    cam[y1:y2, x1 + dx:x2 + dx] = 1 - 0.5 * (np.hypot((xs - (x1 + x2) / 2) / (x2 - x1),
                                                      (ys - (y1 + y2) / 2) / (y2 - y1)))
    return cam


def test_a_map_on_the_object_beats_the_same_map_shifted_off_it(trained_case):
    model, im0, det, dx = trained_case
    dx = int(round(dx))
    on, off = box_map(im0.shape, det.box), box_map(im0.shape, det.box, dx)
    assert on.sum() == pytest.approx(off.sum())  # the same map, moved
    p = Perturber(model, 320, steps=10, baseline='blur', batch=8)  # the box protocol (default)
    c_on, c_off = p.curves(im0, [(on, det.cls, det.box), (off, det.cls, det.box)])
    assert c_on.budget == c_off.budget == round(BOX_MULTIPLE * (det.box[2] - det.box[0]) * (det.box[3] - det.box[1]))
    assert c_on.deletion_auc < c_off.deletion_auc - 0.3, (c_on.deletion, c_off.deletion)
    assert c_on.insertion_auc > c_off.insertion_auc + 0.3, (c_on.insertion, c_off.insertion)
    assert c_off.deletion.min() > 0.9  # deleting up to twice the box area beside the object: still detected
    assert c_on.deletion.min() < 0.2  # deleting the map's first pixels removes it
    assert len(c_on.deletion) == len(c_on.insertion) == 11 and c_on.deletion[0] == 1
    assert c_on.insertion[0] == pytest.approx(c_on.empty / c_on.start)
