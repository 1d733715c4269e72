"""``yolo-attn train | val | detect | export``: yolov5's own scripts, every option unchanged.

The rest of the command line goes to the script's own parser (``yolo-attn train --help`` is
train.py's help); ``integration.scripts`` runs the preflight and the script.
"""

from __future__ import annotations

from ..integration.compat import YOLOV5_SCRIPTS
from .command import Command


def run(script: str, argv: list[str]) -> int:
    """Run yolov5's ``script`` with ``argv`` (user errors propagate to ``main``: one line, exit 2)."""
    from ..integration.scripts import run_script
    return run_script(script, argv)


def _unused(args):  # pragma: no cover (main hands these commands to ``run`` before argparse)
    raise AssertionError('yolov5 scripts are run by cli.main')


HELP = {'train': "yolov5's train.py (all its options), attention YAMLs allowed",
        'val': "yolov5's val.py (all its options)", 'detect': "yolov5's detect.py (all its options)",
        'export': "yolov5's export.py (all its options)"}
COMMANDS = {name: Command(HELP[name], _unused) for name in YOLOV5_SCRIPTS}
