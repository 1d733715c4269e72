"""How a figure is drawn: the figure flags, their defaults and checks (``figures`` draws with them).

Nothing here imports OpenCV, so the CLI shows these flags at once; ``COLORMAP_NAMES`` lists OpenCV's
``cv2.COLORMAP_<NAME>`` constants by name (tests/test_cli.py checks them against OpenCV).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError

COLORMAP_NAMES = ('autumn', 'bone', 'cividis', 'cool', 'deepgreen', 'hot', 'hsv', 'inferno', 'jet', 'magma', 'ocean',
                  'parula', 'pink', 'plasma', 'rainbow', 'spring', 'summer', 'turbo', 'twilight', 'twilight_shifted',
                  'viridis', 'winter')  # sorted


@dataclass
class Style:
    """How a figure is drawn (the ``--alpha --colormap --hide-labels --hide-conf --line-thickness
    --scale`` flags)."""
    alpha: float = 0.5  # weight of the map over the image, 0 … 1
    colormap: str = 'jet'
    hide_labels: bool = False
    hide_conf: bool = False
    line_thickness: int | None = None  # None: yolov5's rule (0.3 % of the image's mean side, >= 2)
    scale: float = 1.0  # output size / original size

    def __post_init__(self):
        if not 0 <= self.alpha <= 1:
            raise OptionError('alpha', f'{self.alpha}: the map weight must be between 0 and 1')
        if self.colormap not in COLORMAP_NAMES:
            raise OptionError('colormap', f"{self.colormap!r}: choose from {', '.join(COLORMAP_NAMES)}")
        if not self.scale > 0:
            raise OptionError('scale', f'{self.scale}: must be a positive factor')
        if self.line_thickness is not None and self.line_thickness < 1:
            raise OptionError('line_thickness', f'{self.line_thickness}: must be at least 1 pixel')

    def label(self, name: str, score: float, prefix: str = '') -> str:
        """The label text, or '' with ``hide_labels``."""
        if self.hide_labels:
            return ''
        return f'{prefix}{name}' if self.hide_conf else f'{prefix}{name} {score:.2f}'
