"""Attention blocks. Importing this package registers them (one file per block)."""

from .cbam import CBAM, ChannelAttention, SpatialAttention
from .coord import CoordAtt
from .eca import ECA
from .se import SE
from .simam import SimAM

__all__ = ['SE', 'CBAM', 'ChannelAttention', 'SpatialAttention', 'ECA', 'CoordAtt', 'SimAM']
