"""What a command is: its help line, how it adds its flags, what it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Command:
    """``configure(parser)`` adds the flags (None: the command parses its own argv);
    ``run(args) -> exit code``."""
    help: str
    run: Callable
    configure: Callable | None = None
