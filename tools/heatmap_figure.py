#!/usr/bin/env python
"""The heatmap picture of README.md and docs/heatmaps.md: one image's overview and detection maps.

``yolo-attn heatmap`` on one image; its maps side by side (one per head level first, largest score first).

    python tools/heatmap_figure.py --weights runs/demo/exp/train/weights/best.pt \
        --image runs/demo/exp/shapes/images/val/000003.png --out docs/heatmap_outputs.png
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2

from yolo_attn.cli import main as cli


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--weights', required=True)
    ap.add_argument('--image', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--imgsz', type=int, default=320)
    ap.add_argument('--panels', type=int, default=3, help='detection maps beside the overview')
    ap.add_argument('--scale', type=float, default=1.0)
    opt, extra = ap.parse_known_args()  # anything else goes to yolo-attn heatmap (e.g. --layers)
    with tempfile.TemporaryDirectory() as tmp:
        code = cli(['heatmap', '--weights', opt.weights, '--source', opt.image, '--imgsz', str(opt.imgsz),
                    '--scale', str(opt.scale), '--project', tmp, '--name', 'fig', *extra])
        if code:
            sys.exit(code)
        run = Path(tmp) / 'fig'
        image = json.loads((run / 'heatmaps.json').read_text())['images'][0]
        dets = sorted(image['detections'], key=lambda d: -d['score'])
        picked, levels = [], set()
        for d in dets:  # one per head level first, then by score
            if d['head_level'] not in levels:
                picked.append(d)
                levels.add(d['head_level'])
        picked += [d for d in dets if d not in picked]
        panels = [cv2.imread(str(run / Path(image['overview']).name))]
        panels += [cv2.imread(str(run / Path(d['png']).name)) for d in picked[:opt.panels]]
        gap = 255 * (panels[0][:, :8] * 0 + 1)
        row = [p for panel in panels for p in (panel, gap)][:-1]
        cv2.imwrite(opt.out, cv2.hconcat(row))
    print(f'{opt.out}: overview + {min(opt.panels, len(picked))} detections '
          f"({', '.join(d['head_level'] + ' ' + d['class_name'] for d in picked[:opt.panels])})")


if __name__ == '__main__':
    main()
