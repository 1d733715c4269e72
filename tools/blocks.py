#!/usr/bin/env python
"""Thin script: ``python tools/blocks.py`` is ``yolo-attn blocks``."""

import sys

from yolo_attn.cli import main

sys.exit(main(['blocks', *sys.argv[1:]]))
