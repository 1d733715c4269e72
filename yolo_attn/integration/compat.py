"""Make yolov5 7.0.14 import, train, validate and load checkpoints on the pinned stack, offline.

One small function per incompatibility; ``apply()`` runs them all once: ``pkg_resources`` (setuptools
81), ``np.trapz`` in ``compute_ap`` (numpy 2.4), ``check_font``/``check_pil_font`` downloads and PIL
``getsize`` (Pillow 10), network calls (ultralytics' DNS probe, ``check_requirements``,
``attempt_download``, ``check_file``), the ONNX exporter (torch 2.9), ``weights_only`` loads (torch 2.6,
``add_safe_globals``), console noise. ``activate`` then runs ``untrusted.install`` and
``guards.images.install``. The table of fixes: docs/safety.md, "Offline and today's stack".
"""

from __future__ import annotations

import importlib
import os
import sys
import types
import warnings
from pathlib import Path

_APPLIED = False

# yolov5 modules whose nn.Module classes may appear in a checkpoint; upstream YOLOv5 pickles
# them as ``models.<name>`` (its repo root is on sys.path), the PyPI package as ``yolov5.models.<name>``.
YOLOV5_MODEL_MODULES = ('common', 'experimental', 'yolo')


def offline_environment() -> None:
    """yolov5 imports ultralytics (for ``check_requirements``), whose import resolves
    one.one.one.one / dns.google to decide whether it is online. ``YOLO_OFFLINE=1``, its own
    switch, skips that probe; set before anything imports ultralytics (a user's value is kept)."""
    os.environ.setdefault('YOLO_OFFLINE', '1')


def quiet_pkg_resources() -> None:
    """yolov5's utils/general.py imports ``pkg_resources``, which warns that it is deprecated: a
    line on every command a user cannot act on. Silenced (that message only) before yolov5 is
    imported, unless the user chose warning filters (-W, PYTHONWARNINGS)."""
    if not sys.warnoptions:
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)


def require_pkg_resources() -> None:
    """Import ``pkg_resources`` (needed by yolov5) or fail with one line that says how to fix it."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "pkg_resources is deprecated" UserWarning
        try:
            import pkg_resources  # noqa: F401
        except ModuleNotFoundError as e:
            raise RuntimeError("yolov5 7.0.14 needs pkg_resources, which setuptools>=81 removed: "
                               "pip install 'setuptools<81' (see constraints.txt)") from e


class ModuleView(types.ModuleType):
    """A stand-in for ``module`` in one yolov5 module's globals: ``overrides`` first, the rest
    delegated. Lets a fix reach exactly the yolov5 code that needs it, not every user of torch/numpy."""

    def __init__(self, module, **overrides):
        super().__init__(module.__name__)
        self.__dict__['_module'] = module
        self.__dict__.update(overrides)

    def __getattr__(self, name):
        return getattr(self.__dict__['_module'], name)


def patch_trapz() -> None:
    """Give ``yolov5.utils.metrics`` a numpy that has ``trapz``."""
    import numpy as np
    metrics = importlib.import_module('yolov5.utils.metrics')
    if not hasattr(metrics.np, 'trapz'):
        metrics.np = ModuleView(np, trapz=np.trapezoid)


def patch_amp() -> None:
    """Give train.py and autobatch a torch whose ``cuda.amp`` is ``torch.amp(..., 'cuda')``: the
    deprecated ``torch.cuda.amp`` warns every batch (torch >= 2.4). It wraps the torch the module sees,
    so ``activate`` runs it after ``checkpoints.install`` has given train.py its secure ``torch.load``."""
    import functools

    import torch

    def autocast(enabled=True, dtype=torch.float16, cache_enabled=True):  # torch.cuda.amp.autocast's order
        return torch.amp.autocast('cuda', enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)

    amp = ModuleView(torch.cuda.amp, autocast=autocast, GradScaler=functools.partial(torch.amp.GradScaler, 'cuda'))
    for name in ('yolov5.train', 'yolov5.utils.autobatch'):
        module = importlib.import_module(name)
        if not getattr(module.torch, '_yolo_attn_amp', False):
            module.torch = ModuleView(module.torch, cuda=ModuleView(torch.cuda, amp=amp), _yolo_attn_amp=True)


class _ExportHint:
    """Logging filter: export.py's closing hint names ``yolov5 detect|val``, which cannot load an
    attention checkpoint (the plain ``yolov5`` command has no plugin); name ``yolo-attn`` instead."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith('\nExport complete'):
            record.msg = (record.msg.replace('yolov5 detect --weights', 'yolo-attn detect --weights')
                          .replace('yolov5 predict --weights', 'yolo-attn detect --weights')
                          .replace('yolov5 val --weights', 'yolo-attn val --weights')
                          .replace('model = yolov5.load(', 'import yolo_attn, yolov5; model = yolov5.load('))
        return True


def patch_export_hint() -> None:
    """Install ``_ExportHint`` on yolov5's logger (once)."""
    import logging
    logger = logging.getLogger('yolov5')
    if not any(isinstance(f, _ExportHint) for f in logger.filters):
        logger.addFilter(_ExportHint())


# torch deprecations that yolov5 7.0.14 code triggers and a user cannot act on: shown once per
# process, not once per call (torch.jit.trace warns on every call, trace_method twice per trace).
ONCE = (r'`torch\.jit\.trace', r'You are using the legacy TorchScript-based ONNX export')


def deprecations_once() -> None:
    """Show a warning matching one of ``ONCE`` only the first time (unless the user chose warning
    filters: -W, PYTHONWARNINGS). A ``'once'`` filter is not enough: every ``filterwarnings`` call,
    which torch's tracer makes, clears Python's record of what was shown."""
    import re
    if sys.warnoptions or getattr(warnings.showwarning, 'yolo_attn', False):
        return
    original, shown = warnings.showwarning, set()

    def showwarning(message, category, filename, lineno, file=None, line=None):
        pattern = next((p for p in ONCE if re.match(p, str(message))), None)
        if pattern is not None:
            if pattern in shown:
                return
            shown.add(pattern)
        return original(message, category, filename, lineno, file, line)

    showwarning.yolo_attn = True
    warnings.showwarning = showwarning


def patch_onnx_export() -> None:
    """yolov5's ONNX export passes ``opset_version=12`` and ``dynamic_axes``, options of torch's
    TorchScript-based exporter; torch >= 2.9 defaults to the dynamo exporter (needs onnxscript,
    opset >= 18). Give export.py a ``torch.onnx.export`` that asks for ``dynamo=False``."""
    import functools

    import torch
    export = importlib.import_module('yolov5.export')
    if export.torch is torch:
        onnx = ModuleView(torch.onnx, export=functools.partial(torch.onnx.export, dynamo=False))
        export.torch = ModuleView(torch, onnx=onnx)


def bundled_font() -> Path:
    """matplotlib's DejaVuSans.ttf: a TrueType font that is always on disk with our deps."""
    import matplotlib
    return Path(matplotlib.get_data_path()) / 'fonts' / 'ttf' / 'DejaVuSans.ttf'


def _local_font(font) -> Path:
    """The requested font if it exists locally (as given, or in yolov5's config dir), else ours."""
    from yolov5.utils.general import CONFIG_DIR
    font = Path(font)
    for candidate in (font, CONFIG_DIR / font.name):
        if candidate.is_file():
            return candidate
    return bundled_font()


def _check_font_offline(font='Arial.ttf', progress=False):
    """Replacement for yolov5's ``check_font``: resolve a local font, never download."""
    return _local_font(font)


def _check_pil_font_offline(font='Arial.ttf', size=10):
    """Replacement for yolov5's ``check_pil_font``: a PIL TrueType font from disk, never downloaded,
    that still offers ``getsize`` (removed in Pillow 10; yolov5's ``Annotator.box_label`` calls it)."""
    from PIL import ImageFont

    class FontWithGetsize(ImageFont.FreeTypeFont):
        def getsize(self, text):
            left, top, right, bottom = self.getbbox(text)
            return right, bottom

    return FontWithGetsize(str(_local_font(font)), size)


def patch_fonts() -> None:
    """Route yolov5's font look-ups to local files (``check_font`` is imported by name in plots.py)."""
    general = importlib.import_module('yolov5.utils.general')
    plots = importlib.import_module('yolov5.utils.plots')
    general.check_font = _check_font_offline
    plots.check_font = _check_font_offline
    plots.check_pil_font = _check_pil_font_offline


YOLOV5_SCRIPTS = ('train', 'val', 'detect', 'export')


def replace_in_yolov5(name: str, replacement, original=None) -> None:
    """Rebind ``name`` to ``replacement`` in every loaded yolov5 module that imported the original
    (by default the one in yolov5's utils/general.py or utils/downloads.py)."""
    if original is None:
        general = importlib.import_module('yolov5.utils.general')
        downloads = importlib.import_module('yolov5.utils.downloads')
        original = getattr(general, name, None) or getattr(downloads, name)
    for mod_name, module in list(sys.modules.items()):
        if mod_name.startswith('yolov5') and module is not None and getattr(module, name, None) is original:
            setattr(module, name, replacement)


def _no_requirements_check(*args, **kwargs):
    """Offline stand-in for ``check_requirements``: never pip-installs (our deps are pinned)."""
    return True


def _local_weights_only(file, *args, **kwargs):
    """Offline stand-in for ``attempt_download``: a local file or a shipped one, else one clear error."""
    from ..guards.paths import refuse_url
    refuse_url(str(file).strip(), '--weights')
    from ..config.files import resolve_weights
    return str(resolve_weights(str(file).strip().replace("'", '')))  # a path, or a shipped name


def _local_file_only(file, suffix=''):
    """Offline stand-in for ``check_file`` (``check_yaml`` calls it): a URL is refused, a local file
    is found as yolov5 finds it (as given, else in its own data/, models/ folders), else one line."""
    from ..errors import UserError
    from ..guards.paths import refuse_url
    refuse_url(file, 'file')
    if file and os.path.isdir(str(file)):
        raise UserError(f'{file}: is a folder; give the file itself (e.g. the data YAML inside it)')
    try:
        return _ORIGINAL['check_file'](file, suffix)
    except AssertionError as e:
        raise UserError(f'{file}: {str(e).splitlines()[0]}') from None


_ORIGINAL = {}


def patch_network() -> None:
    """Import yolov5's scripts and make every network-touching helper they use offline."""
    for script in YOLOV5_SCRIPTS:
        importlib.import_module(f'yolov5.{script}')
    replace_in_yolov5('check_requirements', _no_requirements_check)
    replace_in_yolov5('attempt_download', _local_weights_only)
    replace_in_yolov5('attempt_download_from_hub', lambda *a, **k: None)
    replace_in_yolov5('check_online', lambda: False)
    general = importlib.import_module('yolov5.utils.general')
    if general.check_file is not _local_file_only:
        _ORIGINAL['check_file'] = general.check_file
        replace_in_yolov5('check_file', _local_file_only)


def _numpy_globals() -> list:
    """numpy objects found in yolov5 checkpoints (best_fitness etc.), under numpy 1.x and 2.x names."""
    import numpy as np
    from numpy._core import multiarray
    found = [(multiarray._reconstruct, name + '._reconstruct') for name in
             ('numpy.core.multiarray', 'numpy._core.multiarray')]
    found += [(multiarray.scalar, name + '.scalar') for name in ('numpy.core.multiarray', 'numpy._core.multiarray')]
    found += [np.dtype, np.ndarray]
    found += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    return found


def checkpoint_allowlist() -> list:
    """Every global a yolov5 (or yolo-attn) checkpoint may reference, for ``add_safe_globals``."""
    import torch.nn as nn

    from ..blocks.registry import module_classes  # blocks add themselves when registered (register_block)
    allowed = [v for v in vars(nn).values() if isinstance(v, type) and issubclass(v, nn.Module)]
    for name in YOLOV5_MODEL_MODULES:
        module = importlib.import_module(f'yolov5.models.{name}')
        for cls in module_classes(module):
            allowed.append(cls)
            allowed.append((cls, f'models.{name}.{cls.__qualname__}'))  # upstream checkpoints
    return allowed + _numpy_globals()


def allow_checkpoint_globals() -> None:
    """Register the allowlist with torch's weights-only unpickler (blocks registered later add themselves)."""
    import torch
    torch.serialization.add_safe_globals(checkpoint_allowlist())


def device_errors_one_line() -> None:
    """yolov5's ``select_device`` ``assert``s that a requested CUDA device exists: in the heatmap
    commands (which call it outside yolov5's scripts) that was a traceback. Every yolov5 module
    and later importer gets a ``select_device`` whose refusal is one ``UserError`` line instead."""
    import functools

    from ..errors import UserError
    torch_utils = importlib.import_module('yolov5.utils.torch_utils')
    original = torch_utils.select_device
    if getattr(original, 'yolo_attn', False):
        return

    @functools.wraps(original)
    def select_device(device='', *args, **kwargs):
        try:
            return original(device, *args, **kwargs)
        except AssertionError as e:
            import torch
            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            raise UserError(f"--device {device}: {str(e).strip().splitlines()[0]} (this machine has {n} CUDA "
                            f"device{'s' * (n != 1)})") from None

    select_device.yolo_attn = True
    replace_in_yolov5('select_device', select_device, original=original)


def label_scan_in_threads() -> None:
    """Run yolov5's label scan (``cache_labels``) in a ``ThreadPool`` instead of a forking ``Pool``:
    a fork of a process that already runs threads (OpenMP, onnxruntime, a test runner) can deadlock
    in the child (seen: blocked in ``futex_wait``). The work is file I/O and decoding (GIL released)."""
    from multiprocessing.pool import Pool, ThreadPool
    loaders = importlib.import_module('yolov5.utils.dataloaders')
    if loaders.Pool is Pool:
        loaders.Pool = ThreadPool


def apply() -> None:
    """Apply every fix once (idempotent). Must run before yolov5 is imported elsewhere."""
    global _APPLIED
    if _APPLIED:
        return
    offline_environment()
    require_pkg_resources()
    patch_trapz()
    patch_fonts()
    patch_network()
    patch_onnx_export()
    patch_export_hint()
    device_errors_one_line()
    label_scan_in_threads()
    deprecations_once()
    allow_checkpoint_globals()
    _APPLIED = True  # then activate() runs untrusted.install() and guards.images.install(), which use this module
