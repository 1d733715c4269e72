"""``index.html`` of a ``yolo-attn heatmap`` run: every detection as a thumbnail, with filters,
sorting and a detail view, built from ``heatmaps.json``'s content (``data``) by static/heatmap.js.
The runner calls ``write`` where it rewrites the manifest (paced: ``page.Pacer``). See docs/report.md."""

from __future__ import annotations

import time
from pathlib import Path

from . import page

FIELDS = ['image', 'k', 'cls', 'cls_id', 'score', 'energy', 'level', 'box', 'png', 'objectness', 'class_prob',
          'anchor', 'cell', 'layers', 'constant']
SORTS = [('score-desc', 'score ↓'), ('score-asc', 'score ↑'), ('energy-asc', 'energy in box ↑'),
         ('energy-desc', 'energy in box ↓'), ('image', 'image, detection')]
_PACERS: dict = {}  # run folder -> page.Pacer


def image_name(entry: dict) -> str:
    name = Path(str(entry.get('path', ''))).name
    return name if entry.get('frame') is None else f"{name} frame {entry['frame']}"


def data(manifest: dict, save_dir) -> dict:
    """The page's JSON: images, class and level names, and one row of ``FIELDS`` per detection,
    paths relative to ``save_dir``."""
    classes, levels, images, dets = {}, {name: i for i, name in enumerate(manifest.get('head_levels') or [])}, [], []
    for i, entry in enumerate(manifest.get('images', [])):
        images.append({'name': image_name(entry), 'path': str(entry.get('path', '')), 'frame': entry.get('frame'),
                       'w': entry.get('width'), 'h': entry.get('height'),
                       'overview': page.href(entry.get('overview'), save_dir),
                       'gates': [{**{k: g.get(k) for k in ('layer', 'block', 'gate_min', 'gate_max', 'note')},
                                  'png': page.href(g.get('png'), save_dir)} for g in entry.get('attention_maps', [])]})
        for d in entry.get('detections', []):
            cls = classes.setdefault(str(d.get('class_name')), len(classes))
            level = levels.setdefault(str(d.get('head_level')), len(levels))
            dets.append([i, d.get('index'), cls, d.get('class_id'), round(float(d.get('score', 0)), 5),
                         _number(d.get('energy_in_box')), level,
                         [round(float(v), 1) for v in d.get('box_xyxy', [0, 0, 0, 0])],
                         page.href(d.get('png'), save_dir),
                         _number(d.get('objectness')), _number(d.get('class_prob')),  # objectness None: anchor-free
                         d.get('anchor'), d.get('cell'), d.get('layers'), bool(d.get('constant_map'))])
    return {'fields': FIELDS, 'classes': list(classes), 'levels': list(levels), 'images': images, 'dets': dets}


def _number(value):
    """A manifest number rounded for the page; None (shown as a dash) where the manifest has none."""
    return None if value is None else round(float(value), 5)


def settings(manifest: dict) -> list:
    layers = manifest.get('layers') or {}
    per_level = layers.get('per_level') or {}
    described = '; '.join(f"{k}: {','.join(map(str, v))}" for k, v in per_level.items())
    style = manifest.get('style') or {}
    n = sum(len(i.get('detections', [])) for i in manifest.get('images', []))
    skipped = manifest.get('skipped') or []
    return [('weights', manifest.get('weights')), ('backend', manifest.get('backend')),
            ('method', f"{manifest.get('method')}" + ('' if manifest.get('per_detection', True)
                                                      else ' (not per-detection: one map per image)')),
            ('target', manifest.get('target')),
            ('layers', f"{layers.get('spec', '')} = {described}" if layers else None),
            ('imgsz', manifest.get('imgsz')),
            ('conf / iou', f"{manifest.get('conf_thres')} / {manifest.get('iou_thres')}"
             if 'conf_thres' in manifest else None),
            ('renorm in box', 'yes' if manifest.get('renorm_in_box') else None),
            ('figures', f"alpha {style.get('alpha')}, {style.get('colormap')}, scale {style.get('scale')}"
             if style else None),
            ('images', f"{len(manifest.get('images', []))}" + (f' ({len(skipped)} skipped)' if skipped else '')),
            ('detections', n), ('seconds', (manifest.get('seconds') or {}).get('total'))]


def render(manifest: dict, save_dir) -> str:
    sorts = ''.join(f'<option value="{page.esc(v)}">{page.esc(t)}</option>' for v, t in SORTS)
    skipped = manifest.get('skipped') or []
    skipped_html = ('<details class="note"><summary>skipped images</summary><ul>' +
                    ''.join(f"<li>{page.esc(s.get('path'))}: {page.esc(s.get('reason'))}</li>" for s in skipped) +
                    '</ul></details>') if skipped else ''
    body = f'''{page.header('yolo-attn heatmap', save_dir, manifest, settings(manifest))}
<div class="controls" id="controls">
<label>class <select id="f-class"><option value="">all</option></select></label>
<label>score <input type="number" id="f-min" min="0" max="1" step="0.05" placeholder="min"> to
<input type="number" id="f-max" min="0" max="1" step="0.05" placeholder="max"></label>
<label>level <select id="f-level"><option value="">all</option></select></label>
<label>image <input type="search" id="f-image" placeholder="name contains"></label>
<label>sort <select id="f-sort">{sorts}</select></label>
<label>show <select id="f-view"><option value="crop">box and around</option>
<option value="full">whole image</option></select></label>
<button id="f-reset" type="button">reset</button>
<span class="counts"><span id="count">0</span> of <span id="total">0</span> detections &middot;
<span id="shown">0</span> shown</span>
</div>
<main>{skipped_html}
<noscript><p class="empty">The grid needs JavaScript; every file is in this folder, listed in heatmaps.json.</p>
</noscript>
<div id="grid" class="grid"></div>
<p id="empty" class="empty" hidden>No detection matches these filters.</p>
<button id="more" class="more" type="button" hidden>show more</button>
</main>
<div id="detail" hidden role="dialog" aria-modal="true" aria-labelledby="detail-title"></div>'''
    return page.document(f'heatmap {Path(str(save_dir)).name}', 'heatmap', body, data(manifest, save_dir),
                         'heatmap.js')


def write(save_dir, manifest: dict, final: bool = False) -> Path | None:
    """Write ``save_dir/index.html`` from ``manifest`` if due (``page.Pacer``; always when ``final``,
    complete or interrupted). Returns its path, or None when not rewritten this time."""
    key = str(Path(save_dir).resolve())
    pacer = _PACERS.setdefault(key, page.Pacer())
    final = final or bool(manifest.get('complete') or manifest.get('interrupted'))
    if not pacer.due(final):
        return None
    start = time.perf_counter()
    path = page.write(save_dir, render(manifest, save_dir))
    pacer.wrote(start)
    if final:
        _PACERS.pop(key, None)
    return path
