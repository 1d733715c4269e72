"""Python API: per-detection heatmaps for images, without writing files.

    from yolo_attn.heatmaps import explain
    for image in explain('runs/train/exp/weights/best.pt', 'datasets/shapes/images/val', imgsz=320):
        for d in image.detections:
            print(d.name, d.score, d.box, d.map.shape)   # map: float32 HxW at original size

Sources (image, folder, glob, video, .txt list) are read by yolov5's ``LoadImages`` as detect.py
reads them, so boxes match detect.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch

from ..errors import UserError
from .engine import HeatmapEngine, ImageResult
from .options import HeatmapOptions


def load_model(weights, device='cpu', end2end=None, target=None):
    """A fused eval-mode model from a checkpoint (weights-only loaders), as each framework's predictor
    builds it: yolov5's ``attempt_load`` or ultralytics' ``load_checkpoint`` (``config.backend``
    tells them apart without unpickling). ``end2end``: an NMS-free ultralytics head's choice (None:
    the checkpoint's; False: its one-to-many branch with NMS). ``target``: refused here (one line) when
    the model's head does not define it (``conf`` on an anchor-free head)."""
    model = _load_model(weights, device, end2end)
    if target is not None:
        from .heads import head_for
        head_for(model).check_target(target, Path(str(weights)).name)
    return model


def _load_model(weights, device, end2end):
    from ..config.backend import ULTRALYTICS, backend_of_checkpoint
    from ..config.files import resolve_weights
    from ..integration.checkpoints import CheckpointError
    path = resolve_weights(weights, CheckpointError) if isinstance(weights, (str, Path)) else weights
    if isinstance(path, (str, Path)) and Path(path).is_file() and backend_of_checkpoint(path) == ULTRALYTICS:
        from ..ultralytics.models import load_detector
        return load_detector(path, device, end2end)
    from yolov5.models.experimental import attempt_load

    from ..integration.checkpoints import load_checkpoint
    load_checkpoint(weights)  # one-line errors for a missing, truncated or refused file
    if end2end:
        from ..errors import OptionError
        raise OptionError('nms_free', f'cannot be used: {weights} is a yolov5 model (its head has no NMS-free '
                                      f'branch); leave it off')
    return attempt_load(weights, device=device, fuse=True)


def open_source(source, imgsz, stride, vid_stride=1, on_skip=None):
    """yolov5's ``LoadImages`` over the source (``guards.images``: unreadable files are skipped,
    reported to ``on_skip(path, reason)``); a missing source or a URL is one clear line."""
    from ..guards.images import readable_images_class
    from ..guards.paths import refuse_url
    LoadImages = readable_images_class()  # noqa: N806
    if isinstance(source, (list, tuple)):  # files already found (``shard``: a rank's share of a source)
        return LoadImages([str(s) for s in source], img_size=imgsz, stride=stride, auto=True, vid_stride=vid_stride,
                          on_skip=on_skip)
    src = str(refuse_url(source, 'source'))  # the option's name (the CLI refuses a URL in any flag first)
    return LoadImages(src, img_size=imgsz, stride=stride, auto=True, vid_stride=vid_stride, on_skip=on_skip)


def letterbox_tensor(im0: np.ndarray, imgsz, stride: int) -> torch.Tensor:
    """What ``LoadImages`` feeds the model for the BGR image ``im0``: yolov5's ``letterbox`` (``auto``:
    padded to a multiple of ``stride`` only), RGB, CHW, float in [0, 1]. The one letterbox of the
    package outside ``LoadImages`` (``evaluation.perturb``, ``benchmarks``)."""
    from yolov5.utils.augmentations import letterbox
    im = letterbox(im0, imgsz, stride=stride, auto=True)[0]
    return torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)[::-1])).float() / 255


def first_images(model, source, imgsz, n: int, device='cpu') -> list[torch.Tensor]:
    """The first ``n`` images of ``source`` as ``model`` sees them (1×3×H×W each, letterboxed as detect.py)."""
    from itertools import islice
    dataset = open_source(source, imgsz, int(model.stride.max()))
    return [b[0] for b in islice(batches(dataset, 1, device), n)]


def batches(dataset, batch: int, device) -> Iterator[tuple]:
    """Consecutive images of the same letterboxed shape, up to ``batch`` at a time."""
    group = []
    for path, im, im0, cap, _ in dataset:
        if im0 is None:
            raise UserError(f'{path}: cannot read the image')
        if group and (len(group) == batch or group[0][1].shape != im.shape):
            yield _stack(group, device)
            group = []
        video = dataset.mode == 'video' and cap is not None  # images come before videos in LoadImages
        group.append((path, im, im0, int(cap.get(cv2.CAP_PROP_POS_FRAMES)) - 1 if video else None))
    if group:
        yield _stack(group, device)


def _stack(group, device):
    """(images, originals, paths, frames): ``frames`` holds each video frame's 0-based index in its
    video (None for an image)."""
    ims = torch.stack([torch.from_numpy(g[1]) for g in group]).to(device).float() / 255
    return ims, [g[2] for g in group], [g[0] for g in group], [g[3] for g in group]


def frame_total(dataset) -> int:
    """Images plus video frames ``LoadImages`` will yield (each video's frame count / ``vid_stride``)."""
    total = 0
    for f, video in zip(dataset.files, dataset.video_flag):
        if video:
            cap = cv2.VideoCapture(f)
            total += -(-int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // dataset.vid_stride)
            cap.release()
        else:
            total += 1
    return total


def explain(model, source, *, options: HeatmapOptions | None = None, progress=False, on_skip=None,
            **settings) -> Iterator[ImageResult]:
    """Yield one ``ImageResult`` per image, each detection with its map (see ``engine.Detection``).

    ``options``: a ``HeatmapOptions`` (default ``DEFAULTS``); ``settings``: its fields as keywords,
    which change it (``imgsz=320, method='gradcam', layers='detect', conf_thres=0.1, ...``);
    ``progress``: a tqdm bar; ``on_skip(path, reason)``: told of each unreadable file skipped."""
    from tqdm import tqdm
    from yolov5.utils.general import check_img_size
    o = HeatmapOptions.of(options, **settings)
    if isinstance(model, (str, Path)):
        model = load_model(model, o.device)
    stride = int(model.stride.max())
    imgsz = check_img_size(o.imgsz, s=stride)
    engine = HeatmapEngine(model, o)
    dataset = open_source(source, imgsz, stride, o.vid_stride, on_skip)
    bar = tqdm(total=frame_total(dataset) if progress else None, desc='heatmaps', unit='image',
               disable=not progress)  # per image or video frame
    try:
        for ims, im0s, paths, frames in batches(dataset, o.batch, o.device):
            for result, frame in zip(engine(ims, im0s, paths), frames):
                result.frame = frame
                yield result
                bar.update()
    finally:
        bar.close()  # also on an error: its one line then starts on a line of its own
