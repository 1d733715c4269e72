"""torchrun's environment, read in one place: rank, world size, local rank (yolov5's defaults)."""

from __future__ import annotations

import os


def rank() -> int:
    """Global rank; -1 outside torchrun (yolov5's ``RANK`` default)."""
    return int(os.getenv('RANK', -1))


def world_size() -> int:
    return int(os.getenv('WORLD_SIZE', 1))


def local_rank() -> int:
    """Rank on this machine; -1 outside torchrun (yolov5's ``LOCAL_RANK`` default)."""
    return int(os.getenv('LOCAL_RANK', -1))


def under_torchrun() -> bool:
    return 'LOCAL_RANK' in os.environ
