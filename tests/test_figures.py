"""Figures: labels outside the box (never over the object), style flags, compare panels for objects a
model missed."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from yolo_attn.evaluation.compare import PANEL_HEIGHT, TITLE, group_objects, panel
from yolo_attn.heatmaps.figures import MISSED_COLOR, Style, draw_box, overlay, place_label, tile
from yolo_attn.heatmaps.naming import level_name, output_stem


def overlaps(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.mark.parametrize('box', [(40, 40, 80, 70), (0, 0, 60, 30), (10, 100, 70, 119), (0, 0, 159, 30),
                                 (0, 20, 159, 100), (100, 0, 160, 119)])
def test_label_goes_outside_the_box_where_it_fits(box):
    shape, size = (120, 160), (50, 14)
    rect = place_label(box, size, shape)
    assert rect[2] - rect[0] == 50 and rect[3] - rect[1] == 14
    assert rect[0] >= 0 and rect[1] >= 0 and rect[2] <= 160 and rect[3] <= 120  # inside the image
    assert not overlaps(rect, box)
    if box[1] >= 14:
        assert rect[3] <= box[1]  # above the box first, as yolov5 draws it


def test_label_falls_back_inside_only_when_nothing_outside_fits():
    rect = place_label((0, 0, 160, 120), (50, 14), (120, 160))
    assert rect == (0, 0, 50, 14)


def test_drawn_labels_leave_the_object_visible():
    """Over a small object at the top edge (where yolov5's Annotator puts its label inside the box),
    the label goes below: every pixel strictly inside the box is unchanged."""
    image = np.full((120, 160, 3), 90, np.uint8)
    box = (60, 2, 76, 18)  # a 16-px object touching the top
    out = draw_box(image.copy(), box, 'triangle 0.87', (0, 200, 0), Style())
    inner = (slice(box[1] + 3, box[3] - 2), slice(box[0] + 3, box[2] - 2))
    assert np.array_equal(out[inner], image[inner])
    changed = (out != image).any(-1)
    assert changed[box[3] + 2:, :].any()  # the label is there, below the box
    from yolov5.utils.plots import Annotator  # yolov5's own placement would cover the object
    theirs = Annotator(np.ascontiguousarray(image.copy()), line_width=2)
    theirs.box_label(box, 'triangle 0.87', color=(0, 200, 0))
    assert not np.array_equal(theirs.result()[inner], image[inner])


def detection(box, cls=0, name='circle', score=0.9, shape=(120, 160)):
    cam = np.zeros(shape, np.float32)
    x1, y1, x2, y2 = box
    cam[y1:y2, x1:x2] = 1
    cam = cv2.GaussianBlur(cam, (0, 0), 3)
    return SimpleNamespace(box=list(map(float, box)), cls=cls, name=name, score=score, map=cam / cam.max(), level=0,
                           constant=False)


def test_style_flags():
    image = np.full((120, 160, 3), 128, np.uint8)
    image[0, 0] = 255  # show_cam_on_image scales the blend to its maximum: keep the image's at 255
    det = detection((40, 40, 70, 70))
    big = overlay(image, det, Style(scale=3))
    assert big.shape == (360, 480, 3)
    plain = overlay(image, det, Style(alpha=0.0, hide_labels=True))
    assert np.array_equal(plain[90:110, 0:30], image[90:110, 0:30])  # alpha 0: the image, not the map
    assert not np.array_equal(overlay(image, det, Style(colormap='viridis')), overlay(image, det, Style()))
    assert Style(hide_conf=True).label('circle', 0.9) == 'circle' and Style().label('circle', 0.9) == 'circle 0.90'
    assert Style(hide_labels=True).label('circle', 0.9) == ''
    thick = overlay(image, det, Style(alpha=0.0, line_thickness=6, hide_labels=True))
    thin = overlay(image, det, Style(alpha=0.0, line_thickness=1, hide_labels=True))
    assert (thick != image).any(-1).sum() > 2 * (thin != image).any(-1).sum() > 0
    for bad in (dict(alpha=2), dict(colormap='nope'), dict(scale=0), dict(line_thickness=0)):
        with pytest.raises(ValueError):
            Style(**bad)


def test_panels_mark_objects_a_model_missed():
    a0, a1 = detection((40, 40, 70, 70)), detection((42, 41, 71, 69), score=0.8)
    b1 = detection((110, 20, 140, 50), cls=1, name='square')
    c0 = detection((10, 90, 30, 110), cls=2, name='star', score=0.3)
    objects = group_objects([[c0, a0], [a1, b1]])
    assert objects == [[a0, a1], [c0, None], [None, b1]]  # by score; model 0 missed the square
    image = np.full((120, 160, 3), 100, np.uint8)
    out = panel(image, objects[2], ['first', 'second'], notes=['layers 4,7', 'layers 4,7'])
    assert out.shape[0] == PANEL_HEIGHT + TITLE
    half = (out.shape[1] - 4) // 2
    missed, found = out[TITLE:, :half], out[TITLE:, -half:]
    red = (np.abs(missed.astype(int) - MISSED_COLOR).sum(-1) < 60)
    assert red.sum() > 100  # the dashed red box and the "missed" label
    assert not (np.abs(found.astype(int) - MISSED_COLOR).sum(-1) < 60).sum() > 100
    strip = out[:TITLE, :half]
    assert (np.abs(strip.astype(int) - MISSED_COLOR).sum(-1) < 60).any()  # MISSED in red in the title strip
    assert (missed.std(-1) < 1).mean() > 0.8  # no heatmap colours on the missed model's tile


def test_panel_labels_are_drawn_after_enlarging_and_never_cover_a_small_object():
    image = np.full((320, 320, 3), 100, np.uint8)
    image[138, 138] = 255  # show_cam_on_image scales the blend to its maximum: keep the image's at 255
    det = detection((150, 150, 162, 162), shape=(320, 320))  # a 12-px object
    window = (138, 138, 174, 174)
    t = tile(image, window, 256, det, style=Style(alpha=0))
    f = 256 / 36
    x1, y1, x2, y2 = ((150 - 138) * f, (150 - 138) * f, (162 - 138) * f, (162 - 138) * f)
    inner = t[int(y1) + 4:int(y2) - 3, int(x1) + 4:int(x2) - 3]
    assert inner.std() < 1 and abs(int(inner.mean()) - 100) <= 1  # object area: untouched by the label
    lw = max(round(sum(t.shape) / 2 * 0.003), 2)
    assert lw < 4  # drawn at the tile's size, not an enlarged 1-px line


def test_names():
    assert [level_name(s) for s in (4, 8, 16, 32, 64)] == ['P2', 'P3', 'P4', 'P5', 'P6']
    assert output_stem('/a/clip.mp4', 0) == 'clip_000000' and output_stem('/a/clip.mp4', 12) == 'clip_000012'
    assert output_stem('/a/00001.jpg') == '00001'


def test_overview_labels_keep_clear_of_each_other_and_of_other_boxes():
    from yolo_attn.heatmaps.figures import _overlap
    shape, size = (120, 160), (50, 14)
    box, other = (40, 40, 80, 70), (40, 10, 80, 38)  # another object right above: its box takes that place
    rect = place_label(box, size, shape, avoid=[other])
    assert not _overlap(rect, box) and not _overlap(rect, other) and rect[1] >= 70  # below instead
    crowded = [(0, 0, 160, 39), (0, 71, 160, 120), (0, 39, 39, 71), (81, 39, 160, 71)]
    assert place_label(box, size, shape, avoid=crowded)[3] <= 40  # nowhere free: the first place that fits
    image = np.full((200, 320, 3), 100, np.uint8)
    image[0, 0] = 255
    dets = [detection((40, 80, 80, 110), score=0.9, shape=(200, 320)),  # a circle right under a square
            detection((40, 50, 80, 78), cls=1, name='square', score=0.8, shape=(200, 320))]
    from yolo_attn.heatmaps.figures import overview
    out = overview(image, dets, Style())
    for det in dets:  # inside each box, apart from its border, nothing was drawn over the object
        x1, y1, x2, y2 = (int(v) for v in det.box)
        assert np.array_equal(out[y1 + 3:y2 - 2, x1 + 3:x2 - 2], image[y1 + 3:y2 - 2, x1 + 3:x2 - 2])
    assert (out[111:140, 40:80] != 100).any() and (out[20:50, 40:80] != 100).any()  # below the circle, above the square
