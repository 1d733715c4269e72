"""ultralytics installs nothing once yolo-attn is imported: its ``check_requirements`` still checks, but a
missing package is one line naming it (ultralytics would run ``pip install`` / ``uv pip install``)."""

from __future__ import annotations

import sys

from ..errors import UserError


def install() -> None:
    """Replace ``check_requirements`` in ``ultralytics.utils.checks`` and wherever a loaded ultralytics
    module bound it by name (modules imported later bind ours); idempotent."""
    import ultralytics.utils.checks as checks
    original = checks.check_requirements
    if getattr(original, '_yolo_attn', False):
        return

    def check_requirements(requirements=checks.ROOT.parent / 'requirements.txt', exclude=(), install=True, cmds='',
                           constrain=()):
        if original(requirements, exclude, install=False, cmds=cmds, constrain=constrain):
            return True
        wanted = requirements if isinstance(requirements, str) else ', '.join(map(str, requirements))
        raise UserError(f'ultralytics needs {wanted}, which is not installed here; yolo-attn installs nothing: '
                        f'pip install it yourself, or choose an option that does not need it')

    check_requirements._yolo_attn = True
    check_requirements.__wrapped__ = original
    for name, module in list(sys.modules.items()):
        if name.startswith('ultralytics') and getattr(module, 'check_requirements', None) is original:
            module.check_requirements = check_requirements
