"""Figures a paper can use: a map over the image, boxes, and labels that never hide the object.

Maps are blended by pytorch-grad-cam's ``show_cam_on_image``; boxes are yolov5's ``Annotator`` (its
line width and font metrics); ``place_label`` puts labels outside the box where they fit. Small
images are enlarged before drawing (``scale``). ``Style`` lives in ``style`` (no OpenCV import).
"""

from __future__ import annotations

import cv2
import numpy as np

from .style import COLORMAP_NAMES, Style  # noqa: F401  (Style also importable from here)

COLORMAPS = {name: getattr(cv2, f'COLORMAP_{name.upper()}') for name in COLORMAP_NAMES}  # name -> OpenCV constant
MISSED_COLOR = (0, 0, 255)  # BGR red


def enlarge(image: np.ndarray, factor: float, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    if factor == 1:
        return image
    h, w = image.shape[:2]
    return cv2.resize(image, (max(round(w * factor), 1), max(round(h * factor), 1)), interpolation=interpolation)


def heat(image_bgr: np.ndarray, cam: np.ndarray | None, style: Style) -> np.ndarray:
    """``cam`` (same size as the image, values in [0, 1]) blended over the image; the image alone
    without a map."""
    from pytorch_grad_cam.utils.image import show_cam_on_image
    if cam is None:
        return np.ascontiguousarray(image_bgr.copy())
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    mixed = show_cam_on_image(rgb, np.clip(cam, 0, 1), use_rgb=True, colormap=COLORMAPS[style.colormap],
                              image_weight=1 - style.alpha)
    return np.ascontiguousarray(cv2.cvtColor(mixed, cv2.COLOR_RGB2BGR))


def line_width(shape, style: Style) -> int:
    """yolov5 ``Annotator``'s line width for an image of ``shape``, unless ``line_thickness`` is set."""
    return style.line_thickness or max(round(sum(shape) / 2 * 0.003), 2)


def place_label(box, size, shape, avoid=()) -> tuple[int, int, int, int]:
    """The rectangle ``(x1, y1, x2, y2)`` for a label of ``size`` (w, h) at ``box`` in an image of
    ``shape``: the first outside place (above, below, right, left) that fits and covers no ``avoid``
    rectangle, else the first that fits, else just inside the box's top edge."""
    bx1, by1, bx2, by2 = (int(round(float(v))) for v in box)
    h, w = shape[:2]
    tw, th = size

    def slide(x, length, limit):
        return int(min(max(x, 0), max(limit - length, 0)))

    x = slide(bx1, tw, w)
    y = slide(by1, th, h)
    fits = [(cx, cy, cx + tw, cy + th) for cx, cy in [(x, by1 - th), (x, by2 + 1), (bx2 + 1, y), (bx1 - tw - 1, y)]
            if cx >= 0 and cy >= 0 and cx + tw <= w and cy + th <= h]
    free = [r for r in fits if not any(_overlap(r, a) for a in avoid)]
    return (free or fits or [(x, y, x + tw, y + th)])[0]


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def draw_box(image: np.ndarray, box, label: str, color, style: Style, dashed=False, avoid=(),
             placed=None) -> np.ndarray:
    """The box (yolov5's ``Annotator``) and its label (``place_label``, away from the ``avoid``
    rectangles), drawn on ``image`` in place; the label's rectangle is appended to ``placed``."""
    from yolov5.utils.plots import Annotator
    lw = line_width(image.shape, style)
    if dashed:
        _dashed_rectangle(image, box, color, lw)
    else:
        Annotator(image, line_width=lw).box_label(box, '', color=color)
    if label:
        tf = max(lw - 1, 1)
        (tw, th), _ = cv2.getTextSize(label, 0, fontScale=lw / 3, thickness=tf)
        x1, y1, x2, y2 = place_label(box, (tw + 2, th + 6), image.shape, avoid)
        if placed is not None:
            placed.append((x1, y1, x2, y2))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, -1, cv2.LINE_AA)
        cv2.putText(image, label, (x1 + 1, y2 - 3), 0, lw / 3, (255, 255, 255), thickness=tf, lineType=cv2.LINE_AA)
    return image


def _dashed_rectangle(image, box, color, lw, dash=6):
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    for a, b in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)), ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for s in range(0, length, 2 * dash):
            e = min(s + dash, length)
            p = (a[0] + (b[0] - a[0]) * s // max(length, 1), a[1] + (b[1] - a[1]) * s // max(length, 1))
            q = (a[0] + (b[0] - a[0]) * e // max(length, 1), a[1] + (b[1] - a[1]) * e // max(length, 1))
            cv2.line(image, p, q, color, lw, cv2.LINE_AA)


def scaled_box(box, factor: float, offset=(0, 0)) -> list[float]:
    """A box xyxy moved by ``-offset`` (a crop's corner) and scaled by ``factor``."""
    ox, oy = offset
    return [(float(box[0]) - ox) * factor, (float(box[1]) - oy) * factor,
            (float(box[2]) - ox) * factor, (float(box[3]) - oy) * factor]


def overlay(image_bgr: np.ndarray, det, style: Style = Style(), others=(), cam=None) -> np.ndarray:
    """One detection: its map over the image (enlarged by ``style.scale`` first), its box and label
    (kept clear of the ``others`` boxes -- the image's other detections -- where it can be).
    ``cam``: the detection's map if the caller already made it (default ``det.map``)."""
    from yolov5.utils.plots import colors
    vis = heat(enlarge(image_bgr, style.scale), enlarge(det.map if cam is None else cam, style.scale), style)
    return draw_box(vis, scaled_box(det.box, style.scale), style.label(det.name, det.score), colors(det.cls, True),
                    style, avoid=[scaled_box(b, style.scale) for b in others])


def overview(image_bgr: np.ndarray, detections, style: Style = Style(), cam=None) -> np.ndarray:
    """All detections of an image, numbered, over the image (or over ``cam``, e.g. the maximum of
    their maps, for a video frame)."""
    from yolov5.utils.plots import colors
    vis = heat(enlarge(image_bgr, style.scale), None if cam is None else enlarge(cam, style.scale), style)
    boxes = [scaled_box(det.box, style.scale) for det in detections]
    placed = []  # labels drawn so far: later labels keep clear of them and of the other boxes
    for k, (det, box) in enumerate(zip(detections, boxes)):
        others = [b for j, b in enumerate(boxes) if j != k]
        draw_box(vis, box, style.label(det.name, det.score, f'{k}: '), colors(det.cls, True), style,
                 avoid=others + placed, placed=placed)
    return vis


def tile(image_bgr: np.ndarray, window, height: int, det=None, box=None, style: Style = Style(),
         missed: str = '') -> np.ndarray:
    """A crop ``window`` (x1, y1, x2, y2) of the image enlarged to ``height`` pixels, then the
    detection's map, box and label drawn at that size. Without ``det``: the image with ``box``
    dashed in red and ``missed`` as its label (an object this model did not detect)."""
    from yolov5.utils.plots import colors
    x1, y1, x2, y2 = window
    factor = height / max(y2 - y1, 1)
    size = (max(round((x2 - x1) * factor), 1), height)
    crop = cv2.resize(image_bgr[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)
    if det is None:
        vis = heat(crop, None, style)
        return draw_box(vis, scaled_box(box, factor, (x1, y1)), missed, MISSED_COLOR, style, dashed=True)
    vis = heat(crop, cv2.resize(det.map[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR), style)
    return draw_box(vis, scaled_box(det.box, factor, (x1, y1)), style.label(det.name, det.score),
                    colors(det.cls, True), style)
