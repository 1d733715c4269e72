"""Deterministic synthetic object-detection dataset ("shapes") in YOLO format.

Each image holds filled shapes (:data:`CLASS_NAMES`, told apart by outline only, never colour) on a
textured background; ``hard`` adds unlabelled distractors, clutter, smaller and more occluded objects.
Labels are boxes of the pixels each object still owns. Every image has its own generator,
``numpy.random.default_rng([seed, split, index])``. Design: docs/training.md, "Implementation notes".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from ..errors import is_int
from . import SIZES

__all__ = ["CLASS_NAMES", "DIFFICULTIES", "generate_shapes"]

CLASS_NAMES = ("circle", "square", "triangle", "star", "cross")
DISTRACTOR_NAMES = ("hexagon", "pentagon", "ellipse", "arrow")  # drawn in "hard" images, never labelled

MIN_SIZE, MAX_SIZE = 0.04, 0.50  # object box side as a fraction of imgsz (log-uniform)
MIN_OBJECTS, MAX_OBJECTS = 2, 8  # objects per image (uniform, fewer if placement fails)
MAX_HIDDEN = 0.30  # an object may lose at most this fraction of its pixels to later ones
MIN_CONTRAST = 120.0  # minimum RGB distance between an object and its surroundings
JPEG_QUALITY = 95
_SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class Difficulty:
    """What one difficulty draws: counts, size range (fraction of imgsz), occlusion, clutter."""
    objects: tuple = (MIN_OBJECTS, MAX_OBJECTS)
    sizes: tuple = (MIN_SIZE, MAX_SIZE)
    max_hidden: float = MAX_HIDDEN
    distractors: tuple = (0, 0)
    clutter: tuple = (0, 0)  # lines drawn on the background


DIFFICULTIES = {"easy": Difficulty(),
                "hard": Difficulty(objects=(4, 14), sizes=(0.03, 0.30), max_hidden=0.50,
                                   distractors=(2, 8), clutter=(10, 30))}
_SHIFT = 4  # OpenCV sub-pixel bits for drawing: coordinates are multiplied by 16


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Low-frequency texture, float32 (n, n, 3) in [0, 255]."""
    g = int(rng.integers(2, 7))
    base = rng.uniform(50, 205, size=3)
    grid = (base + rng.uniform(-45, 45, size=(g, g, 3))).astype(np.float32)
    img = cv2.resize(grid, (n, n), interpolation=cv2.INTER_CUBIC)
    coords = np.arange(n, dtype=np.float32) / n - 0.5
    phi = rng.uniform(0, 2 * math.pi)
    ramp = math.cos(phi) * coords[None, :] + math.sin(phi) * coords[:, None]  # (n, n) in ~[-0.7, 0.7]
    img += ramp[..., None] * rng.uniform(-50, 50, size=3).astype(np.float32)
    if rng.random() < 0.5:  # stripes
        psi, period = rng.uniform(0, 2 * math.pi), rng.uniform(0.04, 0.15) * n
        k = np.float32(2 * math.pi * n / period)  # radians per unit of `coords`
        proj = (math.cos(psi) * coords[None, :] + math.sin(psi) * coords[:, None]) * k
        img += np.sin(proj)[..., None] * np.float32(rng.uniform(6, 18))
    img += (rng.random(size=img.shape, dtype=np.float32) - np.float32(0.5)) * np.float32(rng.uniform(6, 18))
    return np.clip(img, 0, 255)


def _outline(cls: int, rng: np.random.Generator) -> np.ndarray | None:
    """Polygon (k, 2) of circumradius ~1 for class ``cls``, randomly rotated; None for circles."""
    name = (CLASS_NAMES + DISTRACTOR_NAMES)[cls]
    if name == "circle":
        return None
    if name in ("hexagon", "pentagon"):
        k = 6 if name == "hexagon" else 5
        ang = math.pi / 2 + np.arange(k) * 2 * math.pi / k
        pts = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    elif name == "ellipse":
        ang = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        pts = np.stack([np.cos(ang), rng.uniform(0.35, 0.6) * np.sin(ang)], axis=1)
    elif name == "arrow":  # shaft plus a triangular head
        s, h = rng.uniform(0.15, 0.25), rng.uniform(0.45, 0.6)
        pts = np.array([(-1, -s), (0.2, -s), (0.2, -h), (1, 0), (0.2, h), (0.2, s), (-1, s)])
    elif name == "square":
        pts = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=np.float64)
    elif name == "triangle":  # near-equilateral: vertex angles jittered a little
        ang = math.pi / 2 + np.arange(3) * 2 * math.pi / 3 + rng.uniform(-0.12, 0.12, size=3)
        pts = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    elif name == "star":  # five points, inner radius 40-50 % of the outer one
        ang = math.pi / 2 + np.arange(10) * math.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.40, 0.50))
        pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    else:  # cross: a plus sign with arms of half-width t
        t = rng.uniform(0.28, 0.36)
        pts = np.array([(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t),
                        (t, 1), (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)])
    th = rng.uniform(0, 2 * math.pi)
    rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    return pts @ rot.T


def _pick_colour(rng: np.random.Generator, refs: list[np.ndarray]) -> np.ndarray:
    """Random colour at least MIN_CONTRAST from every reference colour (best of 32 tries)."""
    best, best_d = None, -1.0
    for _ in range(32):
        c = rng.uniform(0, 255, size=3)
        d = min(float(np.linalg.norm(c - r)) for r in refs)
        if d >= MIN_CONTRAST:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _clutter(rng: np.random.Generator, img: np.ndarray, count: int) -> None:
    """Random straight lines, 1-3 px wide, across the background, in place (no blobs: a small
    round blob would be an unlabelled circle)."""
    n = img.shape[0]
    for _ in range(count):
        colour = tuple(float(v) for v in rng.uniform(0, 255, size=3))
        p0, p1 = rng.integers(0, n, size=2), rng.integers(0, n, size=2)
        cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), colour,
                 int(rng.integers(1, 4)), cv2.LINE_AA)


def _render(rng: np.random.Generator, n: int, spec: Difficulty = DIFFICULTIES["easy"]) -> tuple[np.ndarray, list[str]]:
    """Draw one image; return it (uint8, n x n x 3) and its YOLO label lines."""
    bg = _background(rng, n)
    if spec.clutter[1]:
        _clutter(rng, bg, int(rng.integers(spec.clutter[0], spec.clutter[1] + 1)))
    img = bg.copy()
    ids = np.zeros((n, n), dtype=np.int16)  # 0 = background, k = k-th object (1-based)
    objs = []  # (cls, colour, window, area); cls >= len(CLASS_NAMES): a distractor
    visible = []  # pixels each object still owns
    count = int(rng.integers(spec.objects[0], spec.objects[1] + 1))
    lo, hi = max(spec.sizes[0] * n, 8.0), spec.sizes[1] * n
    sizes = np.exp(rng.uniform(math.log(lo), math.log(hi), size=count))
    labelled = np.ones(count, dtype=bool)
    if spec.distractors[1]:
        extra = int(rng.integers(spec.distractors[0], spec.distractors[1] + 1))
        sizes = np.concatenate([sizes, np.exp(rng.uniform(math.log(lo), math.log(hi), size=extra))])
        labelled = np.concatenate([labelled, np.zeros(extra, dtype=bool)])
    order = np.argsort(-sizes, kind="stable")
    for size, is_object in zip(sizes[order], labelled[order]):  # largest first: small ones stay visible
        cls = int(rng.integers(len(CLASS_NAMES))) if is_object else \
            len(CLASS_NAMES) + int(rng.integers(len(DISTRACTOR_NAMES)))
        poly = _outline(cls, rng)
        if poly is not None:
            poly = poly * (size / np.ptp(poly, axis=0).max())
            pmin, pmax = poly.min(0), poly.max(0)
        else:
            pmin, pmax = np.full(2, -size / 2), np.full(2, size / 2)
        for _ in range(20):  # try a few positions (box fully inside the image)
            c = rng.uniform(1 - pmin, n - 2 - pmax)
            x0, y0 = np.maximum(np.floor(c + pmin).astype(int) - 2, 0)
            x1, y1 = np.minimum(np.ceil(c + pmax).astype(int) + 3, n)
            cover = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
            org = c - (x0, y0)
            if poly is None:
                ctr = tuple(int(v) for v in np.round(org * (1 << _SHIFT)))
                cv2.circle(cover, ctr, int(round(size / 2 * (1 << _SHIFT))), 255, -1, cv2.LINE_AA, _SHIFT)
            else:
                pts = np.round((poly + org) * (1 << _SHIFT)).astype(np.int32)
                cv2.fillPoly(cover, [pts], 255, cv2.LINE_AA, shift=_SHIFT)
            mask = cover > 127
            win = ids[y0:y1, x0:x1]
            hidden = np.bincount(win[mask], minlength=len(objs) + 1)
            if any(visible[k] - hidden[k + 1] < (1 - spec.max_hidden) * o[3] for k, o in enumerate(objs)):
                continue
            refs = [bg[y0:y1, x0:x1][mask].mean(0)] + [objs[k - 1][1] for k in np.unique(win) if k]
            colour = _pick_colour(rng, refs).astype(np.float32)
            alpha = cover[..., None].astype(np.float32) / 255.0
            patch = img[y0:y1, x0:x1]
            patch += alpha * (colour - patch)
            win[mask] = len(objs) + 1
            visible[:] = [v - int(hidden[k + 1]) for k, v in enumerate(visible)] + [int(mask.sum())]
            objs.append((cls, colour, (x0, y0, x1, y1), int(mask.sum())))
            break
    lines = []
    for k, (cls, _, (x0, y0, x1, y1), _) in enumerate(objs, start=1):
        if cls >= len(CLASS_NAMES):
            continue
        vis = ids[y0:y1, x0:x1] == k
        cols, rows = np.flatnonzero(vis.any(0)), np.flatnonzero(vis.any(1))
        bx0, bx1 = x0 + cols[0], x0 + cols[-1] + 1  # pixel edges: tight, inside [0, n]
        by0, by1 = y0 + rows[0], y0 + rows[-1] + 1
        xc, yc, w, h = (bx0 + bx1) / 2 / n, (by0 + by1) / 2 / n, (bx1 - bx0) / n, (by1 - by0) / n
        lines.append(f"{cls} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}")
    return np.round(img).astype(np.uint8), lines


def _check_args(n_train, n_val, imgsz, seed, difficulty="easy") -> None:
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    for name, v in (("n_train", n_train), ("n_val", n_val)):
        if not is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not is_int(imgsz) or imgsz < 64 or imgsz % 32:
        raise ValueError(f"imgsz must be an integer >= 64 and a multiple of 32, got {imgsz!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def generate_shapes(out, n_train: int = SIZES["n_train"], n_val: int = SIZES["n_val"], imgsz: int = SIZES["imgsz"],
                    seed: int = SIZES["seed"], progress: bool = True, difficulty: str = "easy") -> Path:
    """Write the shapes dataset under ``out`` and return the path of its data YAML.

    Layout: ``out/images/{train,val}/*.jpg``, ``out/labels/{train,val}/*.txt`` (normalised
    ``cls xc yc w h``) and ``out/shapes.yaml`` (absolute ``path``). ``out`` must not exist or be
    empty: nothing is overwritten. ``difficulty``: ``easy`` or ``hard``; it does not change an
    image's generator.
    """
    _check_args(n_train, n_val, imgsz, seed, difficulty)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"output directory {out} already exists and is not empty; pick a new --out")
    out = out.resolve()
    counts = {"train": int(n_train), "val": int(n_val)}
    for split in counts:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    jobs = [(split, i) for split, n in counts.items() for i in range(n)]
    width = max(5, len(str(max(counts.values()) - 1)))
    for split, i in tqdm(jobs, desc="shapes", unit="img", disable=not progress):
        rng = np.random.default_rng([int(seed), _SPLITS[split], i])
        img, lines = _render(rng, int(imgsz), DIFFICULTIES[difficulty])
        stem = f"{i:0{width}d}"
        if not cv2.imwrite(str(out / "images" / split / f"{stem}.jpg"), img,
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"could not write image {out / 'images' / split / stem}.jpg")
        (out / "labels" / split / f"{stem}.txt").write_text("".join(f"{s}\n" for s in lines))
    data = {"path": str(out), "train": "images/train", "val": "images/val",
            "nc": len(CLASS_NAMES), "names": dict(enumerate(CLASS_NAMES))}
    yaml_path = out / "shapes.yaml"
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return yaml_path
