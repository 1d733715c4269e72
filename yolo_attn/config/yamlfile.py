"""Read a YAML file as data (``yaml.safe_load``: nothing executed), malformed YAML as one line."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UserError


def read_yaml(path: Path, error: type[UserError] = UserError):
    """The file's data; a syntax error becomes ``error('<path>: malformed YAML (line L, column C): ...')``."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding='utf-8', errors='replace'))
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        at = f' (line {mark.line + 1}, column {mark.column + 1})' if mark else ''
        raise error(f'{path}: malformed YAML{at}: {getattr(e, "problem", None) or e}') from None
