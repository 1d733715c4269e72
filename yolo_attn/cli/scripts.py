"""``yolo-attn train | val | detect | export``: yolov5's own scripts; ``yolo-attn yolo``: ultralytics' command.

``yolo-attn train`` given an ultralytics model YAML or checkpoint runs ultralytics' trainer with the
common flags translated (``ultralytics.train_command``).

The rest of the command line goes to the script's own parser (``yolo-attn train --help`` is
train.py's help); ``integration.scripts`` runs the preflight and the script.
"""

from __future__ import annotations

import argparse
import contextlib

from ..integration.compat import YOLOV5_SCRIPTS
from .command import Command


def run(script: str, argv: list[str]) -> int:
    """Run yolov5's ``script`` with ``argv`` (user errors propagate to ``main``: one line, exit 2).
    Its ``--help`` shows every default, as our own commands' help does."""
    if script == 'yolo':
        from ..ultralytics.cli import run as run_ultralytics
        return run_ultralytics(argv)
    if script == 'train':  # an ultralytics model (YAML or checkpoint): ultralytics' trainer, flags translated
        from ..ultralytics.train_command import ultralytics_train
        code = ultralytics_train(argv)
        if code is not None:
            return code
    from ..integration.scripts import run_script
    if '-h' not in argv and '--help' not in argv:
        return run_script(script, argv)
    with defaults_in_help():
        return run_script(script, argv)


@contextlib.contextmanager
def defaults_in_help():
    """yolov5's scripts build a plain ``argparse.ArgumentParser()``; for one ``--help`` its help is
    formatted by our ``HelpFormatter`` (defaults appended) instead."""
    from . import HelpFormatter
    original = argparse.ArgumentParser._get_formatter
    argparse.ArgumentParser._get_formatter = lambda self: HelpFormatter(prog=self.prog)
    try:
        yield
    finally:
        argparse.ArgumentParser._get_formatter = original


def _unused(args):  # pragma: no cover (main hands these commands to ``run`` before argparse)
    raise AssertionError('yolov5 scripts are run by cli.main')


HELP = {'train': "yolov5's train.py (all its options), attention YAMLs allowed; an ultralytics --cfg/--weights "
                 "trains with ultralytics, the common flags translated",
        'val': "yolov5's val.py (all its options)", 'detect': "yolov5's detect.py (all its options)",
        'export': "yolov5's export.py (all its options)"}
HELP['yolo'] = ("ultralytics' own yolo command (YOLOv8/YOLO11/YOLO26), its syntax: yolo-attn yolo detect train "
                "model=yolo11n-cbam.yaml data=... epochs=...")
COMMANDS = {name: Command(HELP[name], _unused) for name in (*YOLOV5_SCRIPTS, 'yolo')}
