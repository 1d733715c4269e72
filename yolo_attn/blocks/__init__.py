"""Attention blocks. Importing this package registers them (one file per block)."""

from .cbam import CBAM, ChannelAttention, SpatialAttention
from .se import SE

__all__ = ['SE', 'CBAM', 'ChannelAttention', 'SpatialAttention']
