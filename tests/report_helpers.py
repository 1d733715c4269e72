"""Shared by the report tests: a synthetic heatmap run folder, an HTML reader (stdlib ``html.parser``)
and the checks that a page is safe and self-contained."""

import json
import urllib.parse
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

EVIL_CLASS = '<img src=x onerror=alert(1)>'
EVIL_FILE = 'x<script>alert(1)'  # a file name can hold it (no slash)


class Page(HTMLParser):
    """Every start tag with its attributes, the text of every <script>, and the page's text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.scripts, self.text, self._in = [], [], [], None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == 'script':
            self._in = dict(attrs)
            self.scripts.append([dict(attrs), ''])

    def handle_endtag(self, tag):
        if tag == 'script':
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            self.scripts[-1][1] += data
        else:
            self.text.append(data)

    def data(self):
        blocks = [s for a, s in self.scripts if a.get('type') == 'application/json']
        assert len(blocks) == 1
        return json.loads(blocks[0], parse_constant=lambda c: pytest.fail(f'{c} in the JSON block'))

    def srcs(self):
        return [a['src'] for t, a in self.tags if t == 'img' and 'src' in a]


def tiny_png(path, color=(0, 200, 0), size=(24, 32)):
    im = np.zeros((*size, 3), np.uint8)
    im[:] = color
    assert cv2.imwrite(str(path), im)
    return path


def synthetic_heatmap_run(root, n_images=3, per_image=4, relative=True, one_png=False):
    """A heatmap run folder with tiny PNGs and its manifest as the runner writes it (paths relative to
    the working directory ``root`` when ``relative``, else absolute; ``one_png``: every detection's PNG
    is the same file); one class and one file name hostile."""
    run = root / 'runs' / 'exp'
    run.mkdir(parents=True)
    base = Path('runs/exp') if relative else run
    classes = ['circle', 'star', EVIL_CLASS]
    images = []
    for i in range(n_images):
        stem = f'{EVIL_FILE}{i}' if i == 0 else f'img{i}'
        tiny_png(run / f'{stem}.png', (40, 40, 40))
        dets = []
        for k in range(per_image):
            name = classes[(i + k) % 3]
            png = 'det.png' if one_png else f'{stem}_{k:03d}_{name}.png'
            if not (run / png).exists():
                tiny_png(run / png)
            score = round(0.1 + (0.07 * (i * per_image + k)) % 0.9, 4)  # spread over 0.1 ... 1
            dets.append({'index': k, 'box_xyxy': [2.0 + k, 3.0, 12.0 + k, 15.0], 'class_id': (i + k) % 3,
                         'class_name': name, 'objectness': 0.9, 'class_prob': 0.8, 'score': score,
                         'head_level': ['P3', 'P4', 'P5'][k % 3], 'anchor': 1, 'cell': [1, 2], 'raw_index': 7,
                         'target': 'score', 'method': 'elementwise', 'layers': [4, 6],
                         'png': str(base / png),
                         'energy_in_box': float('nan') if k == 1 else 0.5 + 0.01 * k, 'constant_map': False})
        images.append({'path': str(root / 'src' / f'{stem}.jpg'), 'frame': None, 'height': 24, 'width': 32,
                       'overview': str(base / f'{stem}.png'), 'detections': dets})
    manifest = {'weights': f'{EVIL_FILE}.pt', 'method': 'elementwise', 'per_detection': True, 'target': 'score',
                'imgsz': 64, 'layers': {'spec': 'level', 'layers': [4, 6, 9], 'per_level': {'P3': [4], 'P4': [4, 6]}},
                'conf_thres': 0.25, 'iou_thres': 0.45, 'renorm_in_box': False,
                'style': {'alpha': 0.5, 'colormap': 'jet', 'hide_labels': False, 'hide_conf': False,
                          'line_thickness': None, 'scale': 1.0},
                'head_levels': ['P3', 'P4', 'P5'], 'complete': True, 'images': images,
                'skipped': [{'path': f'{EVIL_FILE}.jpg', 'reason': 'unreadable'}]}
    return run, manifest


def assert_safe(text: str, parsed: Page, scripts: int):
    """No hostile string as markup: not in the raw text, no element it would make, only our scripts."""
    assert EVIL_CLASS not in text and '<script>alert' not in text
    assert text.lower().count('<script') == scripts == len(parsed.scripts)
    assert not [a for t, a in parsed.tags if t == 'img' and a.get('src') == 'x']
    assert not [a for t, a in parsed.tags for k in a if k.startswith('on')]  # no inline event handler anywhere
    assert 'http://' not in text and 'https://' not in text  # nothing from the network
    csp = next(a['content'] for t, a in parsed.tags if t == 'meta' and a.get('http-equiv') == 'Content-Security-Policy')
    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp


def resolves(run: Path, ref: str) -> bool:
    assert ref and '://' not in ref and not ref.startswith('/'), ref  # relative: the folder can move
    return (run / urllib.parse.unquote(ref)).is_file()
