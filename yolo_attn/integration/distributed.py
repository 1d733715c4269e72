"""yolov5's own DDP training under ``torchrun`` on the CPU (gloo), and across nodes.

yolov5 7.0.14's train.py ``main()`` and ``train()`` run DDP on CUDA only (NCCL, ``device_ids``,
CUDA barrier ids, DDP wrap ``if cuda``). Only in a torchrun process (``LOCAL_RANK`` set), ``install()``
recompiles both from source with those exact lines replaced (missing lines raise: another yolov5
fails loudly); on GPUs yolov5's lines still run. Table of edits: docs/scale-out.md.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import logging

from ..torchrun import local_rank, rank
from .compat import replace_in_yolov5

LOGGER = logging.getLogger('yolov5')

# yolov5 7.0.14 train.py main(): the CUDA-only lines of its DDP block.
MAIN_CUDA_LINES = """\
        assert torch.cuda.device_count() > LOCAL_RANK, 'insufficient CUDA devices for DDP command'
        torch.cuda.set_device(LOCAL_RANK)
        device = torch.device('cuda', LOCAL_RANK)
        dist.init_process_group(backend='nccl' if dist.is_nccl_available() else 'gloo')
"""
MAIN_EDIT = (MAIN_CUDA_LINES,
             "        if device.type != 'cpu':  # yolo-attn: yolov5's CUDA lines, on a GPU only\n"
             + ''.join('    ' + line for line in MAIN_CUDA_LINES.splitlines(True)[:3])
             + '        dist.init_process_group(backend=_yolo_attn_backend(opt, device))\n')

# yolov5 7.0.14 train.py train(): the DDP wrap, gated on CUDA.
TRAIN_EDIT = ('    if cuda and RANK != -1:\n        model = smart_DDP(model)\n',
              '    if RANK != -1:  # yolo-attn: DDP on the CPU (gloo) too\n        model = smart_DDP(model)\n')


def backend(opt, device) -> str:
    """The process-group backend for ``device``: gloo on the CPU; on CUDA yolov5's own choice."""
    import torch.distributed as dist
    if device.type == 'cpu':
        if getattr(opt, 'sync_bn', False):
            LOGGER.warning('WARNING: --sync-bn: SyncBatchNorm is CUDA-only (yolov5 applies it only on CUDA); '
                           'on the CPU each rank keeps its own BatchNorm statistics')
        return 'gloo'
    return 'nccl' if dist.is_nccl_available() else 'gloo'


def smart_ddp(model, original=None):
    """yolov5's ``smart_DDP`` for a CUDA model; for a CPU model the same DDP (``static_graph=True``)
    with ``device_ids=None``, which DistributedDataParallel requires for CPU modules."""
    from torch.nn.parallel import DistributedDataParallel as DDP
    if next(model.parameters()).device.type == 'cpu':
        return DDP(model, device_ids=None, static_graph=True)
    return original(model)


@contextlib.contextmanager
def zero_first(local_rank: int):
    """yolov5's ``torch_distributed_zero_first``: the other ranks of a node wait until its local rank 0
    has run the block. The barrier gets a CUDA device id only on NCCL (gloo has no devices)."""
    import torch.distributed as dist

    def barrier(rank):
        nccl = dist.get_backend() == 'nccl'
        dist.barrier(device_ids=[rank]) if nccl else dist.barrier()

    if local_rank not in (-1, 0):
        barrier(local_rank)
    yield
    if local_rank == 0:
        barrier(0)


def rank_zero_only(fn):
    """``fn`` on global rank 0 (or outside torchrun); a no-op on the other ranks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if rank() in (-1, 0):
            return fn(*args, **kwargs)

    return wrapper


def shared_run_dir(save_dir):
    """Under torchrun, rank 0's run folder for every rank (``save_dir`` elsewhere): rank 0 claims it
    (``guards.paths.claim_run_dir``) and broadcasts its choice once the process group is up."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return save_dir
    chosen = [str(save_dir)]
    dist.broadcast_object_list(chosen, src=0)
    return chosen[0]


def edit_function(module, name: str, *edits: tuple[str, str]) -> None:
    """Recompile ``module.name`` from its source with each ``(old, new)`` text replaced once, in the
    module's own globals and with its own file name and line numbers (tracebacks point into yolov5)."""
    fn = getattr(module, name)
    if getattr(fn, '_yolo_attn_edited', False):
        return
    lines, first = inspect.getsourcelines(fn)
    source = ''.join(lines)
    for old, new in edits:
        if source.count(old) != 1:
            raise RuntimeError(f'{module.__name__}.{name} is not the yolov5 7.0.14 code yolo-attn edits for '
                               f'torchrun: {old.strip().splitlines()[0]!r} not found once')
        source = source.replace(old, new)
    namespace = {}
    exec(compile('\n' * (first - 1) + source, inspect.getsourcefile(fn), 'exec'), vars(module), namespace)
    edited = namespace[name]
    edited.__defaults__, edited._yolo_attn_edited = fn.__defaults__, True
    setattr(module, name, edited)


def install() -> None:
    """Under torchrun, let yolov5's train.py run DDP on the CPU (idempotent); otherwise do nothing."""
    if local_rank() == -1:
        return
    train = importlib.import_module('yolov5.train')
    if getattr(train, '_yolo_attn_backend', None) is backend:
        return
    torch_utils = importlib.import_module('yolov5.utils.torch_utils')
    train._yolo_attn_backend = backend
    edit_function(train, 'main', MAIN_EDIT)
    edit_function(train, 'train', TRAIN_EDIT)
    train.smart_DDP = functools.partial(smart_ddp, original=torch_utils.smart_DDP)
    train.yaml_save = rank_zero_only(train.yaml_save)
    replace_in_yolov5('torch_distributed_zero_first', zero_first, original=torch_utils.torch_distributed_zero_first)
