"""``python -m yolo_attn`` is the ``yolo-attn`` command."""

import sys

from .cli import main

sys.exit(main())
