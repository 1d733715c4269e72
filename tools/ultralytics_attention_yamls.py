#!/usr/bin/env python
"""Write the shipped ultralytics attention YAMLs (yolo_attn/models/ultralytics/) from the installed
ultralytics' stock YAMLs, by yolo-attn's own surgery: each block after the P3, P4 and P5 stages.

    python tools/ultralytics_attention_yamls.py           # (re)write them
    python tools/ultralytics_attention_yamls.py --check   # exit 1 if a shipped file differs
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

# family: (stock YAML under ultralytics/cfg/models, rows after which the blocks go: P3, P4, P5 stages)
FAMILIES = {'yolov8': ('v8/yolov8.yaml', [4, 6, 9]), 'yolo11': ('11/yolo11.yaml', [4, 6, 10]),
            'yolo26': ('26/yolo26.yaml', [4, 6, 10])}
BLOCKS = {'se': ('SE', []), 'cbam': ('CBAM', [16, 7]), 'eca': ('ECA', []), 'ca': ('CoordAtt', []),
          'simam': ('SimAM', [])}


def target_dir() -> Path:
    return Path(__file__).resolve().parents[1] / 'yolo_attn' / 'models' / 'ultralytics'


def generate(out: Path) -> list[Path]:
    from yolo_attn.config.insert_file import insert_into_yaml_file
    stock = Path(importlib.util.find_spec('ultralytics').origin).parent / 'cfg' / 'models'
    written = []
    for family, (src, hosts) in FAMILIES.items():
        for suffix, (block, args) in BLOCKS.items():
            dst = out / f'{family}-{suffix}.yaml'
            insert_into_yaml_file(stock / src, dst, block, hosts, args)
            written.append(dst)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--check', action='store_true', help='compare with the shipped files instead of writing')
    opt = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = generate(Path(tmp))
        ship = target_dir()
        stale = [f.name for f in made if not (ship / f.name).is_file() or
                 (ship / f.name).read_text() != f.read_text()]
        if opt.check:
            print(f"{len(made) - len(stale)} of {len(made)} shipped ultralytics YAMLs up to date"
                  + (f"; stale: {', '.join(stale)}" if stale else ''))
            return 1 if stale else 0
        ship.mkdir(exist_ok=True)
        for f in made:
            (ship / f.name).write_text(f.read_text())
        print(f'wrote {len(made)} YAMLs to {ship}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
