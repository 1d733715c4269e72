"""``heatmap-eval`` and ``heatmap-compare`` under ``torchrun``: each rank scores its block of the
images (``heatmaps.shard``), every rank gets all rows in one-process order, rank 0 writes the run.

The merged rows equal one process's: each rank sanity-checks its own first ``sanity_max`` matched
detections; the merge keeps the split's first ``sanity_max`` in rank order and blanks the later ones
(NaN). ``heatmap-compare``'s rows concatenate as they are. Usage: docs/scale-out.md.
"""

from __future__ import annotations

import math

from .. import torchrun
from ..heatmaps import shard

SANITY_FIELDS = ('sanity_rho', 'sanity_rho_partial', 'sanity_rho_prior')


def evaluate(evaluate_method, model, images, method, perturber, opts, sanity_max, record=None):
    """``evaluate_method`` on this rank's images, merged across ranks (``merge_evaluation``). Under
    torchrun, also with one process, rank 0 prints each rank's images and seconds; ``record``
    (rank 0's ``report.Record``) follows this rank's images as they finish."""
    if not torchrun.under_torchrun():
        return evaluate_method(model, images, method, perturber, opts, sanity_max, record)
    rows, checks, counts = evaluate_method(model, shard.share(images), method, perturber, opts, sanity_max, record)
    parts = shard.gather((rows, checks, counts, shard.elapsed()))
    report_timing(f'heatmap-eval {method}', [p[3] for p in parts])
    return merge_evaluation([p[:3] for p in parts], sanity_max)


def report_timing(what: str, timings: list) -> None:
    """Rank 0 prints each rank's images and seconds (the slowest rank's time is the wall time)."""
    if shard.is_main():
        print(f'{what}: ' + shard.timing_line(timings, max(t['seconds'] for t in timings)))


def merge_evaluation(parts: list, sanity_max: int):
    """One ``(rows, checks, counts)`` from the ranks' (in rank order); see the module docstring."""
    rows, checks, counts, quota = [], {}, {}, sanity_max
    for rank_rows, rank_checks, rank_counts in parts:
        checked = len(rank_checks.get('rhos', []))
        keep = min(checked, max(quota, 0))
        for key, values in rank_checks.items():
            checks.setdefault(key, []).extend(values[:keep])
        for row in rank_rows[keep:checked]:  # checked on this rank, beyond the split's first sanity_max
            row.update({f: math.nan for f in SANITY_FIELDS})
        quota -= keep
        rows += rank_rows
        for key, value in rank_counts.items():
            counts[key] = counts.get(key, [] if isinstance(value, list) else 0) + value
    return rows, checks, counts


def compare(rows: list, objects: int, missed: int, record=None):
    """``heatmap-compare``'s rows, object and miss counts from every rank (each ran on its
    ``shard.share()`` of the images), in the one-process order; ``record`` (``report.Record``)
    then lists every rank's images done and skipped."""
    if not torchrun.under_torchrun():
        return rows, objects, missed
    manifest = record.manifest if record is not None else {'images_done': {}, 'skipped': []}
    parts = shard.gather((rows, objects, missed, shard.elapsed(), manifest['images_done'], manifest['skipped']))
    report_timing('heatmap-compare', [p[3] for p in parts])
    if record is not None:
        for key in {k for p in parts for k in p[4]}:
            manifest['images_done'][key] = [path for p in parts for path in p[4].get(key, [])]
        manifest['skipped'] = [s for p in parts for s in p[5]]
    return [r for p in parts for r in p[0]], sum(p[1] for p in parts), sum(p[2] for p in parts)
