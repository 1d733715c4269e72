"""Close yolov5 7.0.14's code paths that would run code from, or be exhausted by, a user's files.

Audit of every ``eval``, ``exec``, pickle, ``torch.load``, ``yaml.load`` and ``subprocess`` reachable
from train/val/detect/export: ``eval`` in models/common.py (ONNX ``names``), models/tf.py and
dataloaders.py -> ``restricted_eval``; label-cache pickles -> ``np.load`` without pickle, ``np.save``
writes nothing; ``torch.load`` -> ``checkpoints.secure_load``; ``check_dataset``'s ``exec`` ->
``datasets``; YAML -> ``config.yamlfile.safe_load``; recursive ``glob`` -> ``loop_safe_glob``; a JPEG
re-saved over the user's file -> refused; ``subprocess`` -> refused (export.py: no installs or
downloads). Details: docs/safety.md, "Implementation notes".
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import re
import subprocess
import sys

from ..errors import UserError

EVAL_MODULES = ('yolov5.models.common', 'yolov5.utils.dataloaders')  # yolo.py's evals: its parse_model, replaced
INSTALLING = re.compile(r'\b(apt-get|apt-key|apt|curl|wget|sudo|pip3?|conda|brew)\b')


class UntrustedContent(UserError):
    """File content that would have to run as code to be read; refused."""


def _lookup(node, scope):
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        import builtins
        if node.id in ('None', 'True', 'False') or (hasattr(builtins, node.id) and node.id[0].isupper()):
            return getattr(builtins, node.id, None)
        raise NameError(f"name '{node.id}' is not defined")
    if isinstance(node, ast.Attribute):
        return getattr(_lookup(node.value, scope), node.attr)
    raise ValueError


def restricted_eval(expr, globals_=None, locals_=None):
    """yolov5's uses of ``eval`` without code execution: a literal, or a (dotted) name in the
    caller's scope. ``NameError`` for an unknown name, as ``eval`` raises (yolov5 catches it)."""
    if not isinstance(expr, str):
        raise UntrustedContent(f'refused to evaluate {type(expr).__name__} (only text)')
    try:
        return ast.literal_eval(expr.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        node = ast.parse(expr.strip(), mode='eval').body
    except (SyntaxError, ValueError, RecursionError):
        node = None
    if isinstance(node, (ast.Name, ast.Attribute)):
        frame = sys._getframe(1)
        scope = {**frame.f_globals, **frame.f_locals} if globals_ is None else {**globals_, **(locals_ or {})}
        try:
            value = _lookup(node, scope)
        except ValueError:
            value = None
        else:
            if not callable(value) or isinstance(value, type):  # data or a class, never a function
                return value
    shown = expr if len(expr) < 80 else expr[:77] + '...'
    raise UntrustedContent(f'refused to evaluate {shown!r} from a model or data file: only literals and names '
                           f'are read (nothing was run); a YOLOv5 ONNX export stores names as a dict literal')


def load_without_pickle(file, *args, **kwargs):
    """``np.load`` for yolov5's label caches: never unpickles (a pickled cache is rebuilt)."""
    import numpy as np
    kwargs['allow_pickle'] = False
    return np.load(file, *args, **kwargs)


NOT_SAVED = 'yolo-attn writes nothing into the dataset folder'


class NotSaved(OSError):
    """A file yolov5 would write next to the user's data (label cache, ``--cache disk`` image)."""


def save_nothing(file, *args, **kwargs):
    """``np.save`` for yolov5's dataloaders: nothing is written beside the user's data."""
    raise NotSaved(f'{file}: not saved ({NOT_SAVED})')


def refuse_restore(image, *args, **kwargs):
    """dataloaders' ``ImageOps.exif_transpose``, called only to re-save a JPEG over the user's file."""
    raise ValueError(f'a JPEG without its end marker (truncated?) is not rewritten ({NOT_SAVED}); '
                     f're-save the image yourself to use it')


class DropCacheWarning(logging.Filter):
    """yolov5's "Cache directory ... is not writeable" for a cache ``save_nothing`` did not save."""

    def filter(self, record) -> bool:
        return NOT_SAVED not in record.getMessage()


def _command(args) -> str:
    return args if isinstance(args, str) else ' '.join(map(str, args))


def no_program(args, *pargs, **kwargs):
    """``subprocess.run``/``check_output``/``Popen``/``call`` for yolov5's modules other than
    export.py: every command is refused (a ``UserError``, one line), nothing starts."""
    text = _command(args)
    raise UserError(f'refused to run {text[:60]!r}: yolo-attn starts no other program from yolov5 '
                    f'(no shell, git, zip, gsutil, curl or pip)')


NO_PROGRAMS = dict.fromkeys(('run', 'check_output', 'check_call', 'call', 'Popen', 'getoutput', 'getstatusoutput'),
                            no_program)


def guarded_run(args, *pargs, **kwargs):
    """``subprocess.run`` for export.py: commands that install or download are refused."""
    text = _command(args)
    if INSTALLING.search(text):
        raise UserError(f'refused to run {text.split()[0]!r}: yolo-attn never installs or downloads; '
                        f'install what the export needs yourself (see the error before this one)')
    return subprocess.run(args, *pargs, **kwargs)


def install() -> None:
    """Apply every replacement above (idempotent); run after yolov5's scripts are imported."""
    import glob

    import numpy as np
    import yaml

    from ..config import yamlfile
    from ..guards.paths import loop_safe_glob
    from .compat import ModuleView, replace_in_yolov5
    names = list(EVAL_MODULES)
    if importlib.util.find_spec('tensorflow') is not None:
        names.append('yolov5.models.tf')  # imported only where TensorFlow is installed
    for name in names:
        vars(importlib.import_module(name))['eval'] = restricted_eval
    loaders = importlib.import_module('yolov5.utils.dataloaders')
    if loaders.np is np:
        loaders.np = ModuleView(np, load=load_without_pickle, save=save_nothing)
    if not isinstance(loaders.ImageOps, ModuleView):
        loaders.ImageOps = ModuleView(loaders.ImageOps, exif_transpose=refuse_restore)
    if not any(isinstance(f, DropCacheWarning) for f in loaders.LOGGER.filters):
        loaders.LOGGER.addFilter(DropCacheWarning())
    if loaders.glob is glob:
        loaders.glob = ModuleView(glob, glob=loop_safe_glob)
    export = importlib.import_module('yolov5.export')
    if export.subprocess is subprocess:
        export.subprocess = ModuleView(subprocess, run=guarded_run)
    for name in ('train', 'val', 'detect'):
        importlib.import_module(f'yolov5.{name}')  # loaded now, so that the loop below reaches them
    replace_in_yolov5('subprocess', ModuleView(subprocess, **NO_PROGRAMS), original=subprocess)
    replace_in_yolov5('check_output', no_program, original=subprocess.check_output)
    replace_in_yolov5('check_git_status', lambda *args, **kwargs: None)  # git fetch from yolov5's folder
    if not isinstance(importlib.import_module('yolov5.utils.general').yaml, ModuleView):
        replace_in_yolov5('yaml', ModuleView(yaml, safe_load=yamlfile.safe_load,
                                             load=lambda stream, Loader=None: yamlfile.safe_load(stream)))
