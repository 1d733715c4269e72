"""An ultralytics detection model from a checkpoint, for the heatmap commands: weights-only, fused, eval.

ultralytics' own ``load_checkpoint`` (through the weights-only ``torch_safe_load`` of ``checkpoints``),
as its predictor loads a ``.pt``; a file it cannot read is one line (``CheckpointRefused``).
"""

from __future__ import annotations

from ..errors import UserError


def load_detector(path, device='cpu', end2end=None):
    """The fused eval-mode model of ``path``; ``end2end`` (not None) chooses an NMS-free head's branch
    before fusing (fusing drops the other one)."""
    from . import install
    from .checkpoints import CheckpointRefused as CheckpointError
    install()
    from ultralytics.nn.tasks import load_checkpoint
    try:
        model = load_checkpoint(path, device=device, fuse=False)[0]
    except UserError as e:
        raise CheckpointError(str(e)) from None
    except Exception as e:  # truncated or foreign bytes, a checkpoint with no model in it
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f'{path}: not a readable ultralytics checkpoint: {first}') from None
    from ultralytics.nn.tasks import DetectionModel
    if type(model) is not DetectionModel:  # segment, pose, OBB, classify, world: other heads and outputs
        kind = type(model).__name__.replace('Model', '') or type(model).__name__
        raise CheckpointError(f'{path}: a {kind} model; the heatmap commands explain detect models '
                              f'(YOLOv8/YOLO11/YOLO26 ... detect checkpoints)')
    head = model.model[-1]
    if end2end is not None and getattr(head, 'one2one_cv2', None) is not None:
        head.end2end = bool(end2end)
    elif end2end and getattr(head, 'one2one_cv2', None) is None:
        from ..errors import OptionError
        raise OptionError('nms_free', f'cannot be used: {path} has no NMS-free (one-to-one) head (YOLO26 and '
                                      f'YOLOv10 have one); leave it off to explain the detections after NMS')
    return model.fuse(verbose=False).to(device).eval()
