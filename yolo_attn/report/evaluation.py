"""``index.html`` of a ``yolo-attn heatmap-eval`` run: the summary and sanity tables, the curves,
and per method the matched detections with the lowest energy in the box and the worst deletion,
as thumbnails of their maps (``thumbnails``: the maps made again for those few). Static HTML."""

from __future__ import annotations

import math
from pathlib import Path

from . import page

WORST = 8  # thumbnails per list and method
FOLDER = 'worst'  # the thumbnails' folder inside the run
SUMMARY = ['value', 'detections', 'pointing_game', 'energy_pg', 'deletion_auc', 'insertion_auc', 'sanity_rho',
           'sanity_rho_partial', 'sanity']
SANITY = ['level', 'n', 'mean_rho', 'mean_rho_partial', 'mean_rho_prior', 'constant', 'verdict', 'reason']
HEADERS = {'value': 'detections of', 'detections': 'n', 'pointing_game': 'PG %', 'energy_pg': 'EPG',
           'deletion_auc': 'deletion AUC ↓', 'insertion_auc': 'insertion AUC ↑', 'sanity_rho': 'sanity rho',
           'sanity_rho_partial': 'rho given prior', 'sanity': 'sanity', 'level': 'head level',
           'mean_rho': 'mean rho', 'mean_rho_partial': 'rho given prior', 'mean_rho_prior': 'rho with prior',
           'constant': 'constant maps'}
LISTS = (('energy', 'lowest energy in the box (EPG)', 'energy_pg', False),
         ('deletion', 'worst deletion (highest deletion AUC)', 'deletion_auc', True))  # name, title, key, highest
VERDICT = {'pass': 'ok', 'inconclusive': 'warn', 'fail': 'bad'}  # CSS class of each verdict


def value(row: dict, key: str) -> float:
    try:
        return float(row.get(key))
    except (TypeError, ValueError):
        return math.nan


def worst(rows: list, n: int = WORST) -> dict:
    """``{(method, list name): [row, ...]}``: per method the ``n`` rows lowest in energy in the box
    and the ``n`` highest in deletion AUC (NaN left out)."""
    out = {}
    for method in dict.fromkeys(r['method'] for r in rows):
        mine = [r for r in rows if r['method'] == method]
        for name, _, key, highest in LISTS:
            ok = [r for r in mine if not math.isnan(value(r, key))]
            out[(method, name)] = sorted(ok, key=lambda r: value(r, key), reverse=highest)[:n]
    return out


def thumbnails(model, picks: dict, opts: dict, save_dir, height: int = 192) -> dict:
    """A PNG per picked row: its detection's map made again (``options.explain_each`` with the run's
    own options: the same map), cropped around the box (a box's larger side of margin), into
    ``save_dir/worst/``. Returns ``{id(row): path}``; a row whose image no longer decodes or whose
    detection is not found again (same class, box within 2 px) gets none."""
    from ..evaluation.options import explain_each
    from ..heatmaps.figures import Style, tile
    from ..heatmaps.runner import write
    wanted = {}  # (method, image) -> the picked rows of that image
    for rows in picks.values():
        for r in rows:
            wanted.setdefault((r['method'], str(r['image'])), {})[id(r)] = r
    out, folder = {}, Path(save_dir) / FOLDER
    for (method, image), rows in wanted.items():
        result = next(iter(explain_each(model, [image], method, opts)), None)
        for key, r in rows.items() if result is not None else ():
            box = [value(r, k) for k in ('x1', 'y1', 'x2', 'y2')]
            off = lambda d: sum(abs(a - b) for a, b in zip(d.box, box))  # noqa: E731
            det = min((d for d in result.detections if d.cls == int(r['class_id'])), key=off, default=None)
            if det is None or off(det) > 2:
                continue
            h, w = result.image.shape[:2]
            m = max(box[2] - box[0], box[3] - box[1], 16)
            window = (int(max(box[0] - m, 0)), int(max(box[1] - m, 0)), int(min(box[2] + m, w)),
                      int(min(box[3] + m, h)))
            folder.mkdir(exist_ok=True)
            out[key] = write(folder / f'{method}_{len(out):03d}_{Path(image).stem}.png',
                             tile(result.image, window, height, det, style=Style()))
    return out


def summary_table(summary: list, method: str) -> str:
    rows = [{**r, 'value': 'all matched' if r.get('group') == 'all' else f"{r.get('group')} {r.get('value')}"}
            for r in summary if r.get('method') == method]
    return page.table(rows, SUMMARY, HEADERS, fmt=lambda c, v: '' if v in (None, '') else page.number(
                          v, 1 if c == 'pointing_game' else 3),
                      cell_class=lambda c, v: f'verdict {VERDICT.get(v, "")}' if c == 'sanity' else '',
                      row_class=lambda r: '' if r.get('group') == 'all' else 'sub')


def sanity_table(sanity: list, method: str) -> str:
    return page.table([s for s in sanity if s.get('method') == method], SANITY, HEADERS,
                      cell_class=lambda c, v: f'verdict {VERDICT.get(v, "")}' if c == 'verdict' else '')


def verdict_line(verdict: dict) -> str:
    """``Randomisation check: pass (rho ...): maps change with the weights``, the verdict coloured."""
    word, reason = str(verdict.get('verdict')), str(verdict.get('reason') or '')
    reason = reason[len(word):].lstrip() if reason.startswith(word) else reason  # the reason starts with it
    return (f'<p>Randomisation check: <span class="verdict {page.esc(VERDICT.get(word, ""))}">{page.esc(word)}</span> '
            f'{page.esc(reason)}</p>')


def strip(rows: list, pngs: dict, save_dir) -> str:
    """The picked detections as figures: thumbnail (a link to the PNG) and their numbers."""
    if not rows:
        return '<p class="note">none (no matched detection has this metric)</p>'
    figures = []
    for r in rows:
        src = page.href(pngs[id(r)], save_dir) if id(r) in pngs else None
        img = (f'<a href="{page.esc(src)}"><img src="{page.esc(src)}" loading="lazy" decoding="async" '
               f'alt="{page.esc(r.get("class_name"))}"></a>' if src else '<p class="note">no thumbnail</p>')
        n = lambda key, digits=2: page.esc(page.number(r.get(key), digits))  # noqa: E731
        figures.append(
            f'<figure>{img}<figcaption><b>{page.esc(r.get("class_name"))}</b> {n("score")} · '
            f'{page.esc(r.get("level_name"))}<br>EPG {n("energy_pg")} · '
            f'PG {"hit" if value(r, "pointing_game") == 1 else "miss"} · del {n("deletion_auc")} · '
            f'ins {n("insertion_auc")}<br><span class="note">{page.esc(Path(str(r.get("image"))).name)}</span>'
            '</figcaption></figure>')
    return f'<div class="strip">{"".join(figures)}</div>'


def render(save_dir, manifest: dict, rows: list, summary: list | None = None, sanity: list | None = None,
           picks: dict | None = None, pngs: dict | None = None) -> str:
    """The page: ``rows`` are results.csv's, ``summary`` summary.csv's (made from ``rows`` if None),
    ``sanity`` sanity.csv's; ``picks`` (``worst``) with their ``pngs`` (``thumbnails``)."""
    save_dir = Path(save_dir)
    methods = list(manifest.get('methods') or dict.fromkeys(r['method'] for r in rows))
    skipped = manifest.get('skipped') or []
    items = [('weights', manifest.get('weights')), ('data', f"{manifest.get('data')} ({manifest.get('split')})"),
             ('methods', ', '.join(methods)), ('layers', (manifest.get('layers') or {}).get('spec')),
             ('images', f"{manifest.get('images')}" + (f' ({len(skipped)} unreadable, skipped)' if skipped else '')),
             ('deletion/insertion', f"{manifest.get('protocol')} protocol, {manifest.get('steps')} steps"),
             ('matched detections', f'{len(rows) // max(len(methods), 1)} per method')]
    files = [f for f in ('results.csv', 'summary.csv', 'sanity.csv', 'manifest.json') if (save_dir / f).is_file()]
    parts = [page.header('yolo-attn heatmap-eval', save_dir, manifest, items), '<main>',
             '<p class="note">files: ' + ' · '.join(f'<a href="{page.esc(page.href(save_dir / f, save_dir))}">'
                                                   f'{page.esc(f)}</a>' for f in files) + '</p>']
    if summary is None:
        from ..evaluation.report import summarize
        summary = summarize(rows) if rows else []
    if not rows:
        parts.append('<p class="empty">No detection matched a ground-truth box (yet): nothing to show.</p>')
    if (save_dir / 'curves.png').is_file():
        parts.append('<h2>Deletion and insertion curves</h2><img class="curves" src="curves.png" '
                     'alt="mean deletion and insertion curves per method">')
    for m in methods:
        parts.append(f'<h2>{page.esc(m)}</h2>')
        if any(r.get('method') == m for r in summary):
            parts.append(summary_table(summary, m))
        verdict = next((s for s in sanity or [] if s.get('method') == m and s.get('level') == 'all'), None)
        if verdict:
            parts += [verdict_line(verdict), sanity_table(sanity, m)]
        for name, title, _, _ in LISTS:
            if (m, name) in (picks or {}):
                parts.append(f'<h3>{page.esc(title)}</h3>' + strip(picks[(m, name)], pngs or {}, save_dir))
    parts.append('</main>')
    return page.document(f'heatmap-eval {save_dir.name}', 'heatmap-eval', '\n'.join(parts))


def write(save_dir, manifest: dict, rows: list, summary=None, sanity=None, model=None, opts=None) -> Path:
    """``save_dir/index.html``; with ``model`` and ``opts`` (a finished run) the worst detections get
    thumbnails of their maps, else only their numbers."""
    picks = worst(rows) if rows else {}
    pngs = thumbnails(model, picks, opts, save_dir) if model is not None and picks else {}
    return page.write(save_dir, render(save_dir, manifest, rows, summary, sanity, picks, pngs))


def stopped(save_dir, record) -> Path | None:
    """The page of a run cut short (``report.Record``): the tables of the images done, no thumbnails.
    None when there is no folder or the page could not be written: the error that stopped the run is
    the one to report, not this."""
    if save_dir is None:
        return None
    try:
        return page.write(save_dir, render(save_dir, record.manifest, record.rows))
    except Exception:  # noqa: BLE001  (a full disk, ...: the run's own error is raised instead)
        return None
