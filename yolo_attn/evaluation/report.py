"""Tables and plots of heatmap evaluations: summary rows, a Markdown table, the mean curves PNG, and
the ``Record`` that keeps a run's table and ``manifest.json`` valid image by image."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .metrics import auc
from .options import EVAL

METRICS = ('pointing_game', 'energy_pg', 'deletion_auc', 'insertion_auc')
HEADERS = {'detections': 'n', 'pointing_game': 'PG %', 'energy_pg': 'EPG', 'deletion_auc': 'deletion AUC ↓',
           'insertion_auc': 'insertion AUC ↑', 'sanity_rho': 'sanity rho', 'sanity_rho_partial': 'rho given prior',
           'sanity': 'sanity', 'missed': 'missed'}


def aggregate(rows) -> dict:
    """Counts and means of the per-detection metrics (pointing game as a percentage)."""
    import pandas as pd
    df = pd.DataFrame(rows)
    out = {'detections': len(df)}
    for m in METRICS:
        if m in df and len(df):
            v = df[m].astype(float)
            out[m] = 100 * v.mean() if m == 'pointing_game' else v.mean()  # NaN-skipping means
        else:
            out[m] = float('nan')
    return out


def summarize(rows, by=('method',), groups=(('class', 'class_name'), ('level', 'level_name'))) -> list[dict]:
    """Summary rows: for each value of ``by`` (e.g. the method) all detections, then per class and per level."""
    import pandas as pd
    df = pd.DataFrame(rows)
    out = []
    if df.empty:
        return out
    for key, part in df.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        head = dict(zip(by, key))
        out.append({**head, 'group': 'all', 'value': 'all', **aggregate(part)})
        for group, column in groups:
            for value, sub in sorted(part.groupby(column), key=lambda kv: str(kv[0])):
                out.append({**head, 'group': group, 'value': value, **aggregate(sub)})
    return out


def markdown(rows, columns) -> str:
    """A Markdown table of ``rows`` (dicts), numbers rounded for reading."""
    def cell(v, column):
        if isinstance(v, (float, np.floating)):
            return '—' if np.isnan(v) else f'{v:.1f}' if column == 'pointing_game' else f'{v:.3f}'
        return str(v)
    lines = ['| ' + ' | '.join(HEADERS.get(c, c) for c in columns) + ' |',
             '|' + '|'.join('---' if c in ('method', 'model', 'group', 'value') else '---:' for c in columns) + '|']
    lines += ['| ' + ' | '.join(cell(r.get(c, ''), c) for c in columns) + ' |' for r in rows]
    return '\n'.join(lines)


def write_csv(rows, path: Path, columns=None) -> Path:
    import pandas as pd
    from ..guards.outputs import write_text
    write_text(path, pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format='%.6g'))  # atomic
    return path


class Record:
    """A run's per-detection table (``table``, CSV) and ``manifest.json``, valid at every moment.

    ``image(path, rows, group)`` adds a finished image's rows, ``skip(path, reason)`` lists an
    unreadable one; both files are rewritten atomically (``guards.outputs``), table first, the
    manifest saying ``complete: false`` and how many ``rows`` are accounted for (a slow table rewrite
    may be deferred). ``close`` writes ``complete: true``, ``interrupted`` or ``error``."""

    def __init__(self, save_dir, table: str, header: dict, columns=None):
        """``save_dir`` None: kept in memory only (another torchrun rank: rank 0 writes)."""
        self.save_dir, self.table, self.columns = save_dir and Path(save_dir), table, columns
        self.rows, self.files = [], [table]
        self.manifest = {**header, 'complete': False, 'table': table, 'rows': 0, 'images_done': {}, 'skipped': []}
        self._cost = self._last = 0.0

    def image(self, path, rows, group='all') -> None:
        self.rows += rows
        self.manifest['images_done'].setdefault(str(group), []).append(str(path))
        self.save()

    def skip(self, path, reason: str) -> None:
        if not self.skipped(path):
            self.manifest['skipped'].append({'path': str(path), 'reason': reason})
        self.save()

    def skipped(self, path) -> bool:
        return str(path) in {s['path'] for s in self.manifest['skipped']}

    def save(self, force=False) -> None:
        from ..guards.outputs import write_json
        start = time.perf_counter()
        if self.save_dir is None or (not force and start - self._last < 10 * self._cost):
            return
        self.manifest['rows'] = len(self.rows)
        write_csv(self.rows, self.save_dir / self.table, self.columns if not self.rows else None)
        write_json(self.save_dir / 'manifest.json', {**self.manifest, 'files': self.files})
        self._last = time.perf_counter()
        self._cost = self._last - start

    def close(self, error: BaseException | None = None, rows=None, files=()) -> None:
        """The final state: ``rows`` (all ranks' rows under torchrun) and ``files`` written besides
        the table; ``error``: what ended the run early (None: it completed)."""
        if rows is not None:
            self.rows = list(rows)
        self.files += [f for f in files if f not in self.files]
        if error is None:
            self.manifest['complete'] = True
        elif isinstance(error, KeyboardInterrupt):
            self.manifest['interrupted'] = True
        else:
            self.manifest['error'] = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        self.save(force=True)

    def stopped(self, error: BaseException) -> BaseException:
        """``close(error)``, then the exception to raise: Ctrl-C's says where the results so far are."""
        self.close(error)
        if isinstance(error, KeyboardInterrupt) and self.save_dir is not None:
            return KeyboardInterrupt(f'results so far are in {self.save_dir} (manifest.json lists the images done)')
        return error


def plot_curves(curves: dict, path: Path, title='', protocol=EVAL.protocol, box_multiple=EVAL.box_multiple) -> Path:
    """Mean deletion and insertion curves, one line per key of ``curves``
    (``{label: (deletion array (n, S+1), insertion array (n, S+1))}``); the x axis is the share of the
    protocol's budget (``perturb``: ``box_multiple`` x the box area, or the whole image)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for label, (deletion, insertion) in curves.items():
        for ax, c in zip(axes, (deletion, insertion)):
            c = np.asarray(c, dtype=float)
            if c.size == 0:
                continue
            x = np.linspace(0, 1, c.shape[1])
            y = np.nanmean(c, axis=0)
            ax.plot(x, y, label=f'{label} (n={len(c)}, AUC {auc(y):.3f})')
    for ax, name in zip(axes, ('deletion (lower is better)', 'insertion (higher is better)')):
        budget = f'{box_multiple:g} x box area' if protocol == 'box' else 'all pixels'
        ax.set(title=name, xlabel=f'pixels perturbed in saliency order (share of {budget})',
               ylabel='score / starting score', xlim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
