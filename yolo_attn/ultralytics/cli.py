"""``yolo-attn yolo ARGS``: ultralytics' own ``yolo`` command (its syntax, defaults and outputs) with the
plugin on: attention YAMLs and checkpoints, weights-only loading, offline."""

from __future__ import annotations

import sys


def run(argv: list[str]) -> int:
    """Run ultralytics' ``entrypoint`` on ``argv`` (e.g. ``detect train model=yolo11n-cbam.yaml ...``)."""
    from . import install
    install()
    import ultralytics.cfg as cfg
    saved = sys.argv, cfg.ARGV  # entrypoint reads the module's ARGV, fixed when ultralytics was imported
    sys.argv = cfg.ARGV = ['yolo', *argv]
    try:
        cfg.entrypoint()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except SyntaxError as e:  # ultralytics' way of saying an argument is not valid
        from ..errors import UserError
        raise UserError(str(e).strip().splitlines()[0]) from None
    except RuntimeError as e:  # ultralytics wraps a dataset check's error; ours is one line
        raise_user_cause(e)
        raise
    finally:
        sys.argv, cfg.ARGV = saved
    return 0


def raise_user_cause(e: BaseException) -> None:
    """The plugin's own ``UserError`` that ultralytics wrapped (``Dataset '...' error ...``), raised as is."""
    from ..errors import UserError
    cause = e.__cause__
    if isinstance(cause, UserError):
        raise cause from None
