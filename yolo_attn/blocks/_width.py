"""Hidden width of the squeeze-excite style MLPs shared by SE and CBAM."""

from ..errors import is_int

MIN_HIDDEN = 8


def hidden_width(channels: int, reduction: int) -> int:
    """``max(C // r, 8)``, never more than ``C``; a reduction larger than ``C`` is refused.

    With the papers' r = 16, yolov5n's 64-channel P3 stage would get 4 hidden units; the floor of
    8 (as timm's ``make_divisible`` default) keeps small stages expressive. ``r > C`` leaves no
    hidden unit at all: that is almost always a channel count written where a reduction belongs
    (``[-1, 1, CBAM, [1024]]`` copied from a hand-edited fork), so it is an error, not a clamp.
    (The papers' default r = 16 therefore needs C >= 16; YOLOv5 stages have at least 64.)
    """
    if not is_int(reduction) or reduction < 1:
        raise ValueError(f'reduction must be a positive integer, got {reduction!r}')
    if reduction > channels:
        raise ValueError(f'reduction {reduction} on {channels} channels leaves no hidden units '
                         f'(C // r = 0); rows carry no channel counts here: write the reduction '
                         f'ratio (e.g. 16) or nothing')
    return min(channels, max(channels // reduction, MIN_HIDDEN))
