"""The shared frame of every ``index.html``: one self-contained file with inline CSS and JS, data in
an escaped JSON block, images by paths relative to the run folder, a Content-Security-Policy that
lets nothing load from the network, written atomically (``guards.outputs``)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import time
import urllib.parse
from importlib import resources
from pathlib import Path, PurePath

NAME = 'index.html'


def esc(value) -> str:
    """``value`` as text in HTML (an element's content or a quoted attribute)."""
    return html.escape('' if value is None else str(value), quote=True)


def href(path, save_dir) -> str | None:
    """``path`` (absolute, or relative to the working directory, as a manifest holds it) as a URL
    relative to ``save_dir``: the page keeps working when the run folder is moved or zipped.
    Percent-encoded, so no file name can end the URL early or start another scheme (``javascript:``)."""
    if path is None or str(path) == '':
        return None
    try:
        rel = os.path.relpath(os.path.abspath(str(path)), os.path.abspath(str(save_dir)))
    except ValueError:  # another drive (Windows): no relative path exists
        return None
    return urllib.parse.quote(PurePath(rel).as_posix(), safe='/')


def plain(value):
    """``value`` with NaN and infinities as None (JSON has no NaN) and numpy scalars as Python's."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, 'item') and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_block(obj, element_id='data') -> str:
    """``obj`` as ``<script type="application/json">``: ``<``, ``>`` and ``&`` written as ``\\u003c``…,
    so no string in it (``</script>``, ``<!--``) can end the block or start markup."""
    text = json.dumps(plain(obj), ensure_ascii=False, separators=(',', ':'), allow_nan=False)
    for ch, code in (('<', '\\u003c'), ('>', '\\u003e'), ('&', '\\u0026'), ('\u2028', '\\u2028'),
                     ('\u2029', '\\u2029')):
        text = text.replace(ch, code)
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def static(name: str) -> str:
    text = resources.files(__package__).joinpath('static', name).read_text(encoding='utf-8')  # package data
    if '</' in text.lower():  # inlined as is: it must not be able to close its element
        raise ValueError(f'{name}: contains "</", which would end its inline element')
    return text


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode('utf-8')).digest()).decode() + "'"


def document(title: str, kind: str, body: str, data=None, script: str | None = None) -> str:
    """A whole page: ``body`` (HTML, already escaped), ``data`` as the JSON block, the shared CSS and
    JS plus ``script`` (a file of ``static/``). The CSP allows only these inline style and script
    blocks (by hash: an injected ``<script>`` or ``onerror=`` would not run) and images from the
    page's own folder; nothing else loads."""
    css = static('page.css')
    js = static('common.js') + '\n' + (static(script) if script else "document.body.dataset.ready = '1';\n")
    csp = (f"default-src 'none'; img-src 'self' file: data:; media-src 'self' file:; "
           f"style-src {_sha256(css)}; script-src {_sha256(js)}; base-uri 'none'; form-action 'none'")
    return ''.join([
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        '<meta name="referrer" content="no-referrer">\n',
        f'<title>{esc(title)}</title>\n<style>{css}</style>\n</head>\n',
        f'<body data-page="{esc(kind)}">\n{body}\n',
        json_block(data) + '\n' if data is not None else '',
        f'<script>{js}</script>\n</body>\n</html>\n'])


def table(rows: list, columns: list, headers: dict | None = None, fmt=None, cell_class=None, row_class=None) -> str:
    """A static HTML table of ``rows`` (dicts), every cell escaped: ``fmt(column, value)`` its text
    (default ``number``), ``cell_class(column, value)`` and ``row_class(row)`` CSS classes."""
    headers = headers or {}
    fmt = fmt or (lambda c, v: number(v))
    cell_class = cell_class or (lambda c, v: '')
    head = ''.join(f'<th>{esc(headers.get(c, c))}</th>' for c in columns)
    body = ''.join(
        f'<tr class="{esc(row_class(r) if row_class else "")}">' +
        ''.join(f'<td class="{esc(" ".join(filter(None, (numeric(r.get(c)), cell_class(c, r.get(c))))))}">'
                f'{esc(fmt(c, r.get(c)))}</td>' for c in columns) + '</tr>' for r in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def numeric(value) -> str:
    """``num`` (right-aligned) for a number's cell."""
    return 'num' if isinstance(value, (int, float)) and not isinstance(value, bool) else ''


def number(value, digits=3) -> str:
    """A table cell's text: floats rounded, NaN and None as a dash."""
    value = plain(value)
    if value is None:
        return '—'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value)


def settings(items: list) -> str:
    """The header's settings as a definition list: ``[(label, value), ...]``, None values left out."""
    cells = ''.join(f'<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>' for k, v in items if v is not None and v != '')
    return f'<dl class="settings">{cells}</dl>'


def status(manifest: dict) -> tuple[str, str]:
    """``(css class, words)`` of a run's state from its manifest."""
    if manifest.get('complete'):
        return 'ok', 'complete'
    if manifest.get('interrupted'):
        return 'warn', 'interrupted (Ctrl-C): the images finished before it'
    if manifest.get('error'):
        return 'bad', f"stopped by an error: {manifest['error']}"
    return 'warn', 'in progress, or cut short: the images finished so far'


def header(title: str, run_dir, manifest: dict, items: list) -> str:
    """The page's header: title, run folder, state and settings."""
    state, words = status(manifest)
    return (f'<header><h1>{esc(title)} <span class="run">{esc(Path(str(run_dir)).name)}</span>'
            f' <span class="badge {state}">{esc(words)}</span></h1>{settings(items)}</header>')


def write(save_dir, text: str) -> Path:
    """``save_dir/index.html`` replaced whole (temporary file + rename): a valid page or the old one."""
    from ..guards.outputs import write_text
    path = Path(save_dir) / NAME
    write_text(path, text)
    return path


class Pacer:
    """When to rewrite a page that follows a run image by image: always when ``final``, else when
    the time since the last write is at least ``ratio`` x what that write cost (so the page costs at
    most about 1/``ratio`` of the run)."""

    def __init__(self, ratio: float = 10.0):
        self.ratio, self.last, self.cost = ratio, None, 0.0

    def due(self, final: bool) -> bool:
        return final or self.last is None or time.perf_counter() - self.last >= self.ratio * self.cost

    def wrote(self, started: float) -> None:
        self.last = time.perf_counter()
        self.cost = self.last - started
