"""Close yolov5's own code paths that would run code from, or be exhausted by, files a user is given.

Audit of yolov5 7.0.14 (every ``eval``, ``exec``, pickle load, ``torch.load``, ``yaml.load`` and
``subprocess`` reachable from train/val/detect/export), and where each is closed:

* ``eval`` of file content: ``DetectMultiBackend`` ``eval``s an ONNX model's ``names`` metadata
  (models/common.py); ``models/tf.py`` ``eval``s module names and arguments from the model YAML
  stored in a checkpoint (TensorFlow exports); dataloaders.py ``eval``s a numeric ``--source``.
  Each of those modules gets ``restricted_eval`` as its ``eval``: Python literals, and names or
  ``a.b`` attributes looked up in the caller's scope that are data or classes (what ``'Conv'``,
  ``'nc'`` or ``'nn.Upsample'`` need, never a function such as ``os.system``); a call, an import or
  any other expression is refused and never runs.
  (``yolo.parse_model``'s ``eval``s are gone: ``install`` replaces the parser; the original stays
  reachable only as the reference the stock-equivalence test compares against.)
* pickles: label caches (``labels/*.cache``) are loaded with ``np.load(allow_pickle=True)``
  (dataloaders.py). That module's ``np.load`` never unpickles: a cache holding objects fails to
  load and yolov5 rebuilds it from the label files (``cache_labels``), as for a stale cache.
  ``torch.load`` (checkpoints, ``--resume``'s ``opt``) goes through ``checkpoints.secure_load``.
  ``exec`` of a dataset's download script (``check_dataset``) is unreachable: ``datasets``
  replaces ``check_dataset`` and never downloads.
* YAML: every yolov5 module's ``yaml.safe_load``/``yaml.load`` (hyp YAML, ``opt.yaml`` on resume,
  data YAMLs, OpenVINO metadata) is ``config.yamlfile.safe_load``: plain data, alias bombs and
  oversized files refused in one line.
* writes into the user's dataset: dataloaders.py saves a label cache (``labels/*.cache``, a
  pickle) next to the labels, ``--cache disk`` saves an ``.npy`` beside every image, and
  ``verify_image_label`` "restores" a JPEG without its end marker by re-saving it over the
  user's file. That module's ``np.save`` writes nothing (``NotSaved``: a label cache is rebuilt
  from the labels every run, as it could not be reloaded without unpickling anyway; the
  "not writeable" warning yolov5 would print for it is dropped), ``--cache disk`` is refused by
  the train preflight, and its ``ImageOps.exif_transpose`` (used only for that restore) refuses,
  so such a JPEG is reported and skipped by yolov5 as corrupt, never rewritten.
* folders: the dataset loader's recursive ``glob`` follows symlinks forever on a loop; it gets
  ``guards.paths.loop_safe_glob``.
* other programs: export.py installs the Edge TPU compiler with ``curl | sudo apt-key add`` and
  ``apt-get``; its ``subprocess`` refuses any command that installs or downloads (the export
  preflight refuses those formats earlier, with the package to install) and runs only the
  converters the chosen format needs (``mo``, ``tensorflowjs_converter``, ``edgetpu_compiler``).
  Every other yolov5 module starts no program at all: its ``subprocess`` (and general.py's
  ``check_output``) refuses in one line. That closes val.py's ``zip -r study.zip`` (``--task
  study``, also refused by the val preflight: it writes ``study_*.txt`` into the working
  folder), ``git describe``/``git fetch`` (``git_describe``, ``check_git_status``, also made a
  no-op), ``nvidia-smi`` (torch_utils), ``gsutil`` (evolve, ``--bucket``), ``curl`` and ``tar``
  (downloads), ``git tag`` (weights download).
* TorchScript ``extra_files`` are read as JSON; TensorFlow metadata with ``ast.literal_eval``;
  both already safe.
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
