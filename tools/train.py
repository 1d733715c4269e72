#!/usr/bin/env python
"""Thin script: ``python tools/train.py ARGS`` is ``yolo-attn train ARGS`` (yolov5's train.py options)."""

import sys

from yolo_attn.cli import main

sys.exit(main(['train', *sys.argv[1:]]))
