"""Shipped attention YAMLs by short name in ultralytics itself: ``YOLO('yolo11n-cbam.yaml')`` from any folder.

ultralytics' ``yaml_model_load`` drops the scale letter (``yolo11n-cbam`` -> ``yolo11-cbam.yaml``) and
looks the file up with ``check_yaml`` in its own folders; the wrapper looks in ours first for a
bare name that is ours (``config.files.shipped_ultralytics_dir``), and leaves every other name alone.
"""

from __future__ import annotations

from pathlib import Path


def install() -> None:
    """Wrap ``check_yaml`` in ``ultralytics.nn.tasks`` (where ``yaml_model_load`` reads it); idempotent."""
    import ultralytics.nn.tasks as tasks

    from ..config.files import shipped_ultralytics_dir
    original = tasks.check_yaml
    if getattr(original, '_yolo_attn', False):
        return
    ours = shipped_ultralytics_dir()

    def check_yaml(file, *args, **kwargs):
        path = Path(str(file))
        if path.parent == Path('.') and path.suffix in ('.yaml', '.yml') and (ours / path.name).is_file():
            return str(ours / path.name)
        return original(file, *args, **kwargs)

    check_yaml._yolo_attn = True
    check_yaml.__wrapped__ = original
    tasks.check_yaml = check_yaml
