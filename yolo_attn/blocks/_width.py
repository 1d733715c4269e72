"""Hidden width of the squeeze-excite style MLPs shared by SE and CBAM."""

from ..errors import is_int

MIN_HIDDEN = 8


def hidden_width(channels: int, reduction: int) -> int:
    """``max(C // r, 8)`` (the floor as timm's ``make_divisible``), never more than ``C``. ``r > C`` is
    refused: it is a channel count written where a reduction belongs (docs/blocks.md, "The blocks")."""
    if not is_int(reduction) or reduction < 1:
        raise ValueError(f'reduction must be a positive integer, got {reduction!r}')
    if reduction > channels:
        raise ValueError(f'reduction {reduction} on {channels} channels leaves no hidden units '
                         f'(C // r = 0); rows carry no channel counts here: write the reduction '
                         f'ratio (e.g. 16) or nothing')
    return min(channels, max(channels // reduction, MIN_HIDDEN))
