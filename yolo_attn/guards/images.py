"""The one image decoder, with a pixel limit, and a yolov5 image loader that skips unreadable files.

``install`` wraps yolov5's ``imread`` (utils/general.py, which every ``cv2.imread`` goes through):
the size is read from the header (Pillow) and more than ``max_pixels()`` (default: Pillow's
decompression-bomb threshold) is refused before decoding. Pillow gets the same limit and its own
``Image.open`` back (ultralytics' pip-installs ``pi-heif``). ``ReadableImages`` is yolov5's
``LoadImages`` that skips, with one warning, a file that does not decode. See docs/safety.md.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys

from ..errors import OptionError, UserError

DEFAULT_MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS, Pillow's decompression-bomb threshold
ENV = 'YOLO_ATTN_MAX_PIXELS'
LOGGER = logging.getLogger('yolov5')
_LIMIT = {'pixels': DEFAULT_MAX_PIXELS}
_DECODE = {}  # the decoder we wrap (yolov5's imread, or cv2's own)


UNREADABLE = 'not a readable image (empty, truncated, another format or a broken link)'


class ImageTooLarge(UserError):
    """An image with more pixels than the limit (a decompression bomb, or a flag to raise)."""


class NoReadableImage(UserError):
    """A source none of whose files decodes (each was skipped with a warning line)."""


IMGSZ = 640  # default inference size (pixels), as yolov5's detect.py

def max_pixels() -> int:
    return _LIMIT['pixels']


def set_max_pixels(n) -> None:
    """Set the limit (``None`` keeps it); a non-positive or non-integer value is a ``UserError``."""
    if n is None:
        return
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise UserError(f'--max-pixels {n!r}: expected a whole number of pixels, e.g. 150000000') from None
    if n < 1:
        raise UserError(f'--max-pixels {n}: must be positive')
    _LIMIT['pixels'] = n
    import warnings

    from PIL import Image
    Image.MAX_IMAGE_PIXELS = max(n // 2, 1)  # Pillow raises DecompressionBombError above twice this
    warnings.filterwarnings('ignore', category=Image.DecompressionBombWarning)  # and only warns above this


def add_argument(parser) -> None:
    """``--max-pixels``, for every subcommand that decodes images."""
    parser.add_argument('--max-pixels', type=int, default=None,
                        help=f'refuse images with more pixels than this (default {DEFAULT_MAX_PIXELS:,}, '
                             f'or ${ENV}); raise it for very large images (memory grows with it)')


def check_pixels(width: int, height: int, where) -> None:
    if width * height > max_pixels():
        raise ImageTooLarge(f'{where}: {width}x{height} = {width * height:,} pixels is more than the limit of '
                            f'{max_pixels():,}; give --max-pixels {width * height} (or set {ENV}) if you trust '
                            f'the image and have the memory')


def check_imgsz(imgsz) -> None:
    """An image size (one value or a list): positive, and a square no larger than the pixel limit."""
    for v in imgsz if isinstance(imgsz, (list, tuple)) else [imgsz]:
        if v < 1:
            raise OptionError('imgsz', f'{v}: must be a positive number of pixels, e.g. 640')
        check_pixels(v, v, f'--imgsz {v}')


def header_size(data, where):
    """(width, height) from the encoded image's header, without decoding; None if Pillow cannot tell."""
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            return im.size
    except Image.DecompressionBombError as e:  # Pillow's own check, at the limit set above
        found = re.search(r'\((\d+) pixels\)', str(e))
        n = int(found.group(1)) if found else max_pixels() + 1
        raise ImageTooLarge(f'{where}: {n:,} pixels is more than the limit of {max_pixels():,}; give --max-pixels '
                            f'{n} (or set {ENV}) if you trust the image and have the memory') from None
    except Exception:  # Pillow raises many types for bytes it does not recognise
        return None


def imread(filename, flags=None):
    """``cv2.imread`` with the pixel limit (same contract: ``None`` when the file cannot be read;
    ``flags`` default ``cv2.IMREAD_COLOR``). OpenCV is imported here, not with the module: the CLI
    adds ``--max-pixels`` to its parsers without it."""
    import cv2
    import numpy as np
    flags = cv2.IMREAD_COLOR if flags is None else flags
    try:
        data = np.fromfile(filename, np.uint8)
    except (OSError, ValueError):
        return None
    if data.size == 0:
        return None
    size = header_size(data, filename)
    if size is not None:
        check_pixels(*size, filename)
    im = cv2.imdecode(data, flags)
    if im is not None:
        check_pixels(im.shape[1], im.shape[0], filename)
    return im


def install() -> None:
    """Make ``imread`` the process's ``cv2.imread`` (after yolov5's own redefinition), once."""
    import cv2
    import yolov5.utils.general  # noqa: F401  (redefines cv2.imread first)
    if cv2.imread is not imread:
        _DECODE['imread'] = cv2.imread
        cv2.imread = imread
    from PIL import Image
    patches = sys.modules.get('ultralytics.utils.patches')  # its Image.open pip-installs pi-heif on an
    original = getattr(patches, '_image_open', None)  # unidentified file: use Pillow's own open instead
    if original is not None and Image.open is not original:
        Image.open = original
    if os.environ.get(ENV):
        set_max_pixels(os.environ[ENV])
    else:
        set_max_pixels(max_pixels())


def is_file(path) -> bool:
    """True for a file that exists; otherwise (a dangling or looping link, a folder) one warning line.
    For loops over single images: ``LoadImages`` refuses such a path as a whole source."""
    if os.path.isfile(path):
        return True
    LOGGER.warning(f'WARNING: skipping {path}: {UNREADABLE}')
    return False


def _readable_images_class():
    from yolov5.utils.dataloaders import LoadImages

    class ReadableImages(LoadImages):
        """yolov5's ``LoadImages`` that skips (and records) files it cannot decode."""

        def __init__(self, path, img_size=640, *args, on_skip=None, **kwargs):
            self.skipped, self.on_skip, self.read = [], on_skip, 0
            check_imgsz(img_size)
            try:
                super().__init__(path, img_size, *args, **kwargs)
            except (FileNotFoundError, AssertionError, RuntimeError, OSError) as e:
                raise OptionError('source', f'{path}: {str(e).splitlines()[0]}') from None

        def __next__(self):
            while True:
                try:
                    item = super().__next__()
                    self.read += 1
                    return item
                except StopIteration:
                    if self.skipped and not self.read:
                        raise NoReadableImage(f'--source: none of its {len(self.skipped)} files could be read as an image '
                                        f'(e.g. {self.skipped[0]["path"]}: {self.skipped[0]["reason"]})') from None
                    if not self.read:  # only videos, none of which gave a frame
                        raise NoReadableImage(f'--source: none of its {self.nf} files gave an image or a video frame '
                                              f'(e.g. {self.files[0]}: a video that does not decode)') from None
                    raise
                except AssertionError:  # 'Image Not Found': the file did not decode
                    path = self.files[self.count - 1]
                    reason = UNREADABLE
                    LOGGER.warning(f'WARNING: skipping {path}: {reason}')
                    self.skipped.append({'path': path, 'reason': reason})
                    if self.on_skip is not None:
                        self.on_skip(path, reason)

    return ReadableImages


_CLASSES = {}


def readable_images_class():
    """The ``ReadableImages`` class (made on first use, after yolov5 is imported)."""
    if 'cls' not in _CLASSES:
        _CLASSES['cls'] = _readable_images_class()
    return _CLASSES['cls']
