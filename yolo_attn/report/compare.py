"""``index.html`` of a ``yolo-attn heatmap-compare`` run: the metrics per model, then one row per
object with its panel and each model's numbers, filtered (missed by a model, class, the difference
of a metric between two models) by static/compare.js from ``objects.csv``'s rows (``data``)."""

from __future__ import annotations

from pathlib import Path

from . import page

FIELDS = ['missed', 'score', 'pointing_game', 'energy_pg', 'deletion_auc', 'insertion_auc', 'level_name', 'layers']
METRICS = [('score', 'score'), ('energy_pg', 'EPG'), ('pointing_game', 'pointing game'),
           ('deletion_auc', 'deletion AUC'), ('insertion_auc', 'insertion AUC')]
HEADERS = {'model': 'model', 'detections': 'n', 'pointing_game': 'PG %', 'energy_pg': 'EPG',
           'deletion_auc': 'deletion AUC ↓', 'insertion_auc': 'insertion AUC ↑', 'missed': 'missed'}


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def data(manifest: dict, rows: list, save_dir) -> dict:
    """The page's JSON: model names, classes, metric names, and per object its image, class, panel
    (relative path) and per model ``FIELDS``."""
    models = list(manifest.get('models') or dict.fromkeys(r['model'] for r in rows))
    index = {m: j for j, m in enumerate(models)}
    classes, objects, where = {}, [], {}
    for r in rows:
        key = (str(r['image']), r['object'])
        if key not in where:
            where[key] = len(objects)
            cls = classes.setdefault(str(r.get('class_name')), len(classes))
            name = Path(str(r['image'])).name
            objects.append({'image': name, 'path': str(r['image']), 'k': r['object'], 'cls': cls,
                            'panel': page.href(r.get('panel'), save_dir), 'm': [None] * len(models)})
        o = objects[where[key]]
        j = index.get(r['model'])
        if j is not None:
            o['m'][j] = [int(r.get('missed') or 0)] + [_number(r.get(f)) for f in FIELDS[1:6]] + [
                r.get('level_name'), r.get('layers')]
    return {'models': models, 'weights': manifest.get('weights') or [], 'classes': list(classes),
            'fields': FIELDS, 'metrics': METRICS, 'objects': objects}


def metrics_table(metrics: list) -> str:
    columns = ['model', 'detections', 'pointing_game', 'energy_pg', 'deletion_auc', 'insertion_auc', 'missed']
    return page.table(metrics, columns, HEADERS, fmt=lambda c, v: page.number(v, 1 if c == 'pointing_game' else 3))


def render(save_dir, manifest: dict, rows: list, metrics: list | None = None) -> str:
    models = list(manifest.get('models') or [])
    skipped = manifest.get('skipped') or []
    layers = manifest.get('layers') or []
    items = [('models', ', '.join(f'{m} = {w}' for m, w in zip(models, manifest.get('weights') or []))),
             ('source', manifest.get('source')), ('method', manifest.get('method')), ('target', manifest.get('target')),
             ('layers', ' · '.join(f"{m}: {l.get('spec')}" for m, l in zip(models, layers) if isinstance(l, dict))),
             ('images', f"{manifest.get('images')}" + (f' ({len(skipped)} unreadable, skipped)' if skipped else '')),
             ('objects', len({(str(r['image']), r['object']) for r in rows}))]
    options = ''.join(f'<option value="{page.esc(k)}">{page.esc(t)}</option>' for k, t in METRICS)
    table = metrics_table(metrics) if metrics else (
        '<p class="note">Not yet: the metrics per model are written when the run completes.</p>')
    body = f'''{page.header('yolo-attn heatmap-compare', save_dir, manifest, items)}
<main><h2>Metrics per model</h2>
<p class="note">Averaged over the objects every model detected; missed: objects a model did not detect.</p>
{table}</main>
<div class="controls" id="controls">
<label>missed <select id="f-missed"><option value="">any</option>
<option value="any-model">by some model</option><option value="none">by no model</option></select></label>
<label>class <select id="f-class"><option value="">all</option></select></label>
<label>difference of <select id="f-metric">{options}</select></label>
<label><select id="f-a"></select> minus <select id="f-b"></select></label>
<label>at least <input type="number" id="f-diff" step="0.05" placeholder="0.1"></label>
<label>sort <select id="f-sort"><option value="image">image, object</option>
<option value="diff">difference, largest first</option></select></label>
<button id="f-reset" type="button">reset</button>
<span class="counts"><span id="count">0</span> of <span id="total">0</span> objects &middot;
<span id="shown">0</span> shown</span>
</div>
<main>
<noscript><p class="empty">The list needs JavaScript; the panels are in this folder, listed in objects.csv.</p>
</noscript>
<div id="objects" class="objects"></div>
<p id="empty" class="empty" hidden>No object matches these filters.</p>
<button id="more" class="more" type="button" hidden>show more</button>
</main>'''
    return page.document(f'heatmap-compare {Path(str(save_dir)).name}', 'heatmap-compare', body,
                         data(manifest, rows, save_dir), 'compare.js')


def write(save_dir, manifest: dict, rows: list, metrics: list | None = None) -> Path:
    return page.write(save_dir, render(save_dir, manifest, rows, metrics))


def stopped(save_dir, record) -> Path | None:
    """The page of a run cut short (``report.Record``): the objects done. None when there is no
    folder or it could not be written (the run's own error is the one to report)."""
    if save_dir is None:
        return None
    try:
        return write(save_dir, record.manifest, record.rows)
    except Exception:  # noqa: BLE001
        return None
