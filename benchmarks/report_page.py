#!/usr/bin/env python
"""How fast the heatmap report page (``index.html``) is with 10,000 detections, in headless Chromium.

A synthetic heatmap run (``--detections`` detections over images of 20, every card's PNG one tiny
file) gets its page from ``yolo_attn.report.heatmap``; Chromium opens it from file:// with
``#bench=1``, and the page writes its own ``performance.now()`` timings into ``<pre id="bench">``
(read back with ``--dump-dom``): JSON parse, building the records, the first render (filters applied,
the first page of cards laid out), ready (all that since navigation start, HTML parsing included),
then each filter applied and laid out (three rounds), "show more" and opening a detection. Median of
``--repeats`` fresh browser processes. Also: the page's size and the time Python takes to write it.

    python benchmarks/report_page.py [--detections 10000] [--repeats 5] [--chromium chromium]
"""

import argparse
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from yolo_attn.report import heatmap as heatmap_page  # noqa: E402

CLASSES = ['circle', 'square', 'triangle', 'star', 'cross']


def synthetic_manifest(run: Path, n: int) -> dict:
    rng = np.random.default_rng(0)
    png = run / 'det.png'
    cv2.imwrite(str(png), np.full((64, 64, 3), (60, 160, 60), np.uint8))
    images = []
    for i in range((n + 19) // 20):
        dets = []
        for k in range(min(20, n - 20 * i)):
            x, y = rng.uniform(0, 280, 2)
            c = int(rng.integers(5))
            dets.append({'index': k, 'box_xyxy': [x, y, x + 30, y + 30], 'class_id': c, 'class_name': CLASSES[c],
                         'objectness': 0.9, 'class_prob': 0.9, 'score': float(rng.uniform(0.25, 1)),
                         'head_level': ['P3', 'P4', 'P5'][k % 3], 'anchor': 0, 'cell': [1, 2], 'raw_index': k,
                         'target': 'score', 'method': 'elementwise', 'layers': [4], 'png': str(png),
                         'energy_in_box': float(rng.uniform()), 'constant_map': False})
        images.append({'path': f'/data/images/{i:05d}.jpg', 'frame': None, 'height': 320, 'width': 320,
                       'overview': str(png), 'detections': dets})
    return {'weights': 'best.pt', 'method': 'elementwise', 'per_detection': True, 'target': 'score', 'imgsz': 320,
            'layers': {'spec': 'level', 'layers': [4, 6, 9], 'per_level': {'P3': [4], 'P4': [4, 6], 'P5': [6, 9]}},
            'conf_thres': 0.25, 'iou_thres': 0.45, 'style': {'alpha': 0.5, 'colormap': 'jet', 'scale': 1.0},
            'head_levels': ['P3', 'P4', 'P5'], 'complete': True, 'images': images, 'skipped': []}


def measure(chromium: str, page: Path, profile: Path) -> dict:
    url = page.as_uri() + '#bench=1&bench-image=0001'
    out = subprocess.run([chromium, '--headless=new', '--disable-gpu', '--no-sandbox', '--no-first-run',
                          f'--user-data-dir={profile}', '--window-size=1280,900', '--virtual-time-budget=10000',
                          '--dump-dom', url], capture_output=True, text=True, timeout=300).stdout
    found = re.search(r'<pre id="bench" class="bench">(.*?)</pre>', out, re.S)
    if not found:
        raise SystemExit('no timings in the page: did its script run?')
    return json.loads(html.unescape(found[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--detections', type=int, default=10000)
    p.add_argument('--repeats', type=int, default=5, help='browser runs (median reported)')
    p.add_argument('--chromium', default=shutil.which('chromium') or shutil.which('google-chrome') or 'chromium')
    opt = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / 'exp'
        run.mkdir()
        manifest = synthetic_manifest(run, opt.detections)
        t0 = time.perf_counter()
        page = heatmap_page.write(run, manifest, final=True)
        write_s = time.perf_counter() - t0
        print(f'load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; '
              f'{subprocess.run([opt.chromium, "--version"], capture_output=True, text=True).stdout.strip()}')
        print(f'{opt.detections} detections: index.html {page.stat().st_size / 1e6:.2f} MB, written by Python in '
              f'{write_s:.2f} s')
        runs = [measure(opt.chromium, page, Path(tmp) / 'profile') for _ in range(opt.repeats)]
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    print(f"page (median of {opt.repeats} browser runs): ready {med('ready_ms'):.0f} ms after navigation start "
          f"(JSON parse {med('parse_ms'):.0f} ms, records {med('build_ms'):.0f} ms, first render "
          f"{med('first_render_ms'):.0f} ms)")
    names = list(dict.fromkeys(f['name'] for f in runs[0]['filters']))
    for name in names:
        times = [f['ms'] for r in runs for f in r['filters'] if f['name'] == name]
        count = next(f['count'] for f in runs[0]['filters'] if f['name'] == name)
        what = 'cards on the page' if name == 'show more' else 'open' if name.startswith('open') else 'match'
        print(f'  {name:<18} {statistics.median(times):6.1f} ms median, {max(times):6.1f} ms max '
              f'({len(times)} times; {count} {what})')


if __name__ == '__main__':
    main()
