#!/usr/bin/env python
"""Thin script: ``python tools/build.py --cfg yolov5s-cbam`` is ``yolo-attn build --cfg yolov5s-cbam``."""

import sys

from yolo_attn.cli import main

sys.exit(main(['build', *sys.argv[1:]]))
