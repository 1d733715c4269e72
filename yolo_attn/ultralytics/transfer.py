"""Pretrained weights across inserted rows in ultralytics: ``BaseModel.load`` matches layers by YAML
correspondence (``config.transfer``), not by index, so a stock checkpoint fills every layer of an
attention YAML that has a partner (ultralytics' ``intersect_dicts`` drops every layer after an
inserted row); the log says how many tensors moved and which layers stay fresh. Starts the source
holds (an ``attn_blend`` mid-ramp, a ``residual_gamma``) are carried to the partner blocks, which
ultralytics' load would drop (the target, rebuilt from its YAML, has no such key); fresh blocks
start at blend 0 (``attn_start``)."""

from __future__ import annotations

import functools


def install() -> None:
    """Wrap ``ultralytics.nn.tasks.BaseModel.load``; idempotent."""
    import ultralytics.nn.tasks as tasks
    original = tasks.BaseModel.load
    if getattr(original, '_yolo_attn', False):
        return

    @functools.wraps(original)
    def load(self, weights, verbose=True):
        src = (weights.get('ema') or weights['model']) if isinstance(weights, dict) else weights
        src_yaml, dst_yaml = getattr(src, 'yaml', None), getattr(self, 'yaml', None)
        if not (_has_rows(src_yaml) and _has_rows(dst_yaml)):
            return original(self, weights, verbose)
        from ..config.transfer import correspondence_intersect, layer_correspondence, layer_rows
        from .attn_start import carry_starts, start_fresh_blocks
        mapping = layer_correspondence(src_yaml, dst_yaml)
        n = len(layer_rows(dst_yaml))  # same layout: every layer of both has its partner at its own index
        same = len(mapping) == n == len(layer_rows(src_yaml)) and all(i == j for i, j in mapping.items())
        if same:
            out = original(self, weights, verbose)  # same layout: ultralytics' own matching is right
        else:
            saved = tasks.intersect_dicts
            tasks.intersect_dicts = correspondence_intersect(src_yaml, dst_yaml)
            try:
                out = original(self, weights, verbose)
            finally:
                tasks.intersect_dicts = saved
        if hasattr(src, 'modules'):
            carry_starts(self, src, mapping)  # the source's blends / residual scales, on their partners
        if not same:
            start_fresh_blocks(self, src_yaml, dst_yaml)  # new blocks start as the identity (attn_start)
        return out

    load._yolo_attn = True
    tasks.BaseModel.load = load


def _has_rows(d) -> bool:
    return isinstance(d, dict) and isinstance(d.get('backbone'), list) and isinstance(d.get('head'), list)
