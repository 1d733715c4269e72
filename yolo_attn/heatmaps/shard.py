"""Explanation sharded across ``torchrun`` ranks; rank 0 merges one run folder equal to one process's.

Each rank takes a consecutive block of the images in one-process order (sizes differ by at most
one); ``share(items, key)`` keeps items with the same key (output stem) on one rank, so file names
match one process's. Ranks exchange Python objects only, over gloo; image files go into rank 0's run
folder, so across nodes ``--project`` must be shared. On GPUs a rank uses ``cuda:LOCAL_RANK``.
Usage: docs/scale-out.md.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import UserError
from .api import open_source
from .. import torchrun
from ..torchrun import world_size
from ..guards.paths import PROJECTS, RUN_NAME
from .naming import output_stem
from .options import DEFAULTS

_STATE = {'inside': False}


def rank() -> int:
    """This process's global rank (0 outside torchrun)."""
    return max(torchrun.rank(), 0)


def active() -> bool:
    """True in a torchrun job of two or more processes, outside an already sharded run."""
    return world_size() > 1 and not _STATE['inside']


def is_main() -> bool:
    return rank() == 0


def init() -> None:
    """Join torchrun's process group (gloo: only Python objects are exchanged), once."""
    if world_size() > 1 and not dist.is_initialized():
        dist.init_process_group('gloo')


def device(dev):
    """The device of this rank: a CUDA device becomes ``cuda:LOCAL_RANK`` under torchrun (the CPU stays)."""
    if world_size() == 1 or torch.device(dev).type != 'cuda':
        return dev
    return torch.device('cuda', max(torchrun.local_rank(), 0) % max(torch.cuda.device_count(), 1))


def bounds(n: int, size: int | None = None) -> list[tuple[int, int]]:
    """``[start, stop)`` of each rank's consecutive block of ``n`` items (sizes differ by at most one)."""
    size = size or world_size()
    return [(r * n // size, (r + 1) * n // size) for r in range(size)]


def owners(items: list, key=None, size: int | None = None) -> list[int]:
    """The rank of each item: its block's, or that of the first item with the same ``key``."""
    size = size or world_size()
    block = [r for r, (a, b) in enumerate(bounds(len(items), size)) for _ in range(a, b)]
    if key is None:
        return block
    first = {}
    return [first.setdefault(key(item), block[i]) for i, item in enumerate(items)]


def share(items: list, key=None, r: int | None = None, size: int | None = None) -> list:
    """Rank ``r``'s items (default: this rank's, and its clock starts: ``elapsed``), in their order."""
    mine = [item for item, owner in zip(items, owners(list(items), key, size)) if owner == (rank() if r is None else r)]
    if r is None:
        _STATE['share'] = (len(mine), time.perf_counter(), time.process_time())
    return mine


def elapsed() -> dict:
    """This rank's host, number of items, and wall and CPU seconds since its last ``share()`` (on a
    machine shared with other jobs, wall time includes waiting for a core; CPU time does not)."""
    n, wall, cpu = _STATE['share']
    return {'rank': rank(), 'host': socket.gethostname(), 'images': n, 'seconds': round(time.perf_counter() - wall, 3),
            'cpu_seconds': round(time.process_time() - cpu, 3)}


def gather(obj) -> list:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` outside torchrun)."""
    if world_size() == 1:
        return [obj]
    init()
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def agree(value):
    """Rank 0's ``value`` on every rank."""
    if world_size() == 1:
        return value
    init()
    box = [value if is_main() else None]
    dist.broadcast_object_list(box, 0)
    return box[0]


def run_dir(new_run_dir, project, name, exist_ok):
    """The run folder: made by rank 0 (``new_run_dir``), the same path on every rank."""
    return Path(agree(str(new_run_dir(project, name, exist_ok)) if is_main() else None))


@contextlib.contextmanager
def inside():
    """Run the one-process code of a sharded command (``active()`` is False within)."""
    _STATE['inside'] = True
    try:
        yield
    finally:
        _STATE['inside'] = False


def timing_line(parts: list[dict], wall: float) -> str:
    """``rank 0 (host): 12 images, 30.1 s (CPU 29.5 s); rank 1 ...; wall 31.0 s``: each rank's share and time."""
    ranks = '; '.join(f"rank {p['rank']} ({p['host']}): {p['images']} images, {p['seconds']:.1f} s "
                      f"(CPU {p['cpu_seconds']:.1f} s)" for p in parts)
    return f'{ranks}; wall {wall:.1f} s'



# ---- yolo-attn heatmap ------------------------------------------------------------------------------

def heatmap(run, kwargs: dict, new_run_dir, save_manifest) -> dict:
    """``runner.run(**kwargs)`` sharded: rank ``r`` writes into ``<run>/.shards/rank<r>``, rank 0 moves
    the files up and writes the merged ``heatmaps.json``. Returns the merged manifest on rank 0, the
    rank's own elsewhere."""
    t0 = time.time()
    init()
    files = list(open_source(kwargs['source'], kwargs.get('imgsz', DEFAULTS.imgsz), 32, kwargs.get('vid_stride', 1)).files)
    save_dir = run_dir(new_run_dir, kwargs.get('project', PROJECTS['heatmap']), kwargs.get('name', RUN_NAME),
                       kwargs.get('exist_ok', False))
    if is_main():  # valid from the start: says where the ranks' own manifests are while they run
        save_manifest(save_dir, {'complete': False, 'images': [], 'shards': [
            str(save_dir / '.shards' / f'rank{r}') for r in range(world_size())]}, t0, 0.0)
    mine, manifest = share(files, key=lambda f: output_stem(f)), None
    if mine:
        quiet = contextlib.nullcontext() if is_main() else contextlib.redirect_stdout(io.StringIO())
        with inside(), quiet:
            manifest = run(**{**kwargs, 'source': mine, 'device': device(kwargs.get('device', 'cpu')),
                              'project': str(save_dir / '.shards'), 'name': f'rank{rank()}', 'exist_ok': False})
    parts = gather({**elapsed(), 'manifest': manifest})
    if not is_main():
        return manifest
    merged = merge_manifests([p['manifest'] for p in parts], files, save_dir)
    merged['shards'] = [{k: v for k, v in p.items() if k != 'manifest'} for p in parts]
    save_manifest(save_dir, merged, t0, sum(p['manifest']['seconds']['writing_files'] for p in parts if p['manifest']))
    n = sum(len(i['detections']) for i in merged['images'])
    constant = sum(d['constant_map'] for i in merged['images'] for d in i['detections'])
    print(f"merged {world_size()} ranks: {n} detection heatmaps for {len(merged['images'])} images ({constant} "
          f"constant) saved to {save_dir}; manifest {save_dir / 'heatmaps.json'}")
    print(timing_line(merged['shards'], time.time() - t0))
    merged['save_dir'] = str(save_dir)
    return merged


def merge_manifests(manifests: list, files: list, save_dir: Path) -> dict:
    """One manifest from the ranks' (None for a rank without images): their files moved into
    ``save_dir``, paths rewritten, images ordered as ``files`` (frames of a video stay in order)."""
    done = [m for m in manifests if m is not None]
    order = {str(f): i for i, f in enumerate(files)}
    images = []
    for m in done:
        shard_dir = Path(m['save_dir'])
        if not shard_dir.is_dir():
            raise UserError(f'{shard_dir}: not visible to rank 0; a sharded heatmap across nodes needs --project on '
                            'a filesystem every node shares')
        for f in sorted(shard_dir.iterdir()):
            if f.name != 'heatmaps.json':
                f.replace(save_dir / f.name)
        images += relocate(m['images'], str(shard_dir), str(save_dir))
        (shard_dir / 'heatmaps.json').unlink()
        shard_dir.rmdir()
    with contextlib.suppress(OSError):
        (save_dir / '.shards').rmdir()
    images.sort(key=lambda e: order.get(e['path'], len(order)))  # stable: a video's frames keep their order
    merged = {k: v for k, v in done[0].items() if k not in ('images', 'save_dir', 'seconds')} if done else {}
    merged['complete'] = all(m['complete'] for m in done)
    merged['images'] = images
    return merged


def relocate(value, old: str, new: str):
    """``value`` (JSON-like) with every string path under the folder ``old`` moved to ``new``."""
    if isinstance(value, str):
        return new + value[len(old):] if value == old or value.startswith(old + os.sep) else value
    if isinstance(value, list):
        return [relocate(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: relocate(v, old, new) for k, v in value.items()}
    return value
