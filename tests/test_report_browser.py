"""The report pages in a real browser: headless Chromium loads ``index.html`` from file:// (the run
folder moved first), applies filters from the URL hash and dumps the DOM after its JavaScript ran;
the visible count must equal the manifest's, ``#open=N`` must show detection N's own PNG beside its
image's overview, a hostile class name must stay text, and the screenshot must show the thumbnails.
Skipped, with the reason, where no Chromium or Chrome is installed (``YOLO_ATTN_CHROMIUM`` names one)."""

import math
import os
import shutil
import subprocess
import urllib.parse
import warnings
from pathlib import Path

import cv2
import pytest

from report_helpers import EVIL_CLASS, EVIL_FILE, Page, synthetic_heatmap_run, tiny_png
from yolo_attn.report import compare as compare_page
from yolo_attn.report import evaluation as eval_page
from yolo_attn.report import heatmap as heatmap_page


def find_chromium():
    named = os.environ.get('YOLO_ATTN_CHROMIUM')
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    return next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome',
                                                'google-chrome-stable', 'chrome'))), None)


CHROMIUM = find_chromium()
NO_BROWSER = ('no Chromium or Chrome found (apt-get install chromium, or set YOLO_ATTN_CHROMIUM): '
              'the report browser tests are skipped')


@pytest.fixture(autouse=True)
def browser():
    if CHROMIUM is None:
        warnings.warn(NO_BROWSER)  # listed in the warnings summary too, so a plain -q run shows why
        pytest.skip(NO_BROWSER)
    return CHROMIUM


def chromium(url: str, profile: Path, *args, budget=5000) -> tuple[str, list]:
    """``(stdout, console lines)`` of headless Chromium on ``url`` (``--dump-dom`` or ``--screenshot``
    in ``args``), after ``budget`` ms of virtual time (the page's scripts have run by then)."""
    cmd = [CHROMIUM, '--headless=new', '--disable-gpu', '--no-sandbox', '--no-first-run', '--disable-extensions',
           '--hide-scrollbars', f'--user-data-dir={profile}', '--enable-logging=stderr', '--v=0',
           f'--virtual-time-budget={budget}', *args, url]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=profile.parent)
    console = [line for line in p.stderr.splitlines() if ':CONSOLE' in line]
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, console


def dom(run: Path, profile: Path, **params) -> tuple[Page, str]:
    """The DOM of ``run/index.html#params`` after its JavaScript ran: no script error, nothing refused."""
    url = (run / 'index.html').as_uri() + ('#' + urllib.parse.urlencode(params) if params else '')
    out, console = chromium(url, profile, '--dump-dom')
    assert not [c for c in console if 'Uncaught' in c or 'Refused' in c or 'Failed to load' in c], console
    parsed = Page(out)
    body = next(a for t, a in parsed.tags if t == 'body')
    assert body.get('data-ready') == '1', 'the page script did not finish'
    return parsed, out


def by_id(parsed: Page, element_id: str) -> dict:
    return next(a for _, a in parsed.tags if a.get('id') == element_id)


def text_of(out: str, element_id: str) -> str:
    """The text of the (first, text-only) element with ``element_id`` in the dumped DOM."""
    start = out.index(f'id="{element_id}"')
    return out[out.index('>', start) + 1:out.index('<', start)]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A synthetic heatmap run of 700 detections (three pages of cards), its page written, then the
    folder moved: every image must still load."""
    monkeypatch.chdir(tmp_path)
    folder, manifest = synthetic_heatmap_run(tmp_path, n_images=35, per_image=20, one_png=True)
    heatmap_page.write(folder, manifest, final=True)
    moved = Path(shutil.move(str(folder), str(tmp_path / 'moved' / 'run')))
    return moved, manifest


def matching(manifest, cls=None, lo=-math.inf, hi=math.inf, level=None, image=''):
    return [d for i in manifest['images'] for d in i['detections']
            if (cls is None or d['class_name'] == cls) and lo <= round(d['score'], 5) <= hi
            and (level is None or d['head_level'] == level) and image.lower() in Path(i['path']).name.lower()]


def test_filters_from_the_url_give_the_manifest_count(run, tmp_path):
    folder, manifest = run
    parsed, out = dom(folder, tmp_path / 'profile', **{'class': 'star', 'min': '0.5'})
    n = len(matching(manifest, 'star', lo=0.5))
    assert 0 < n < 700 and text_of(out, 'count') == str(n) and text_of(out, 'total') == '700'
    cards = [a for t, a in parsed.tags if t == 'div' and a.get('class') == 'card']
    assert len(cards) == min(n, 240) == int(text_of(out, 'shown'))  # the first page only
    assert 'hidden' in by_id(parsed, 'detail') and 'id="detail-title"' not in out  # nothing opened
    parsed, out = dom(folder, tmp_path / 'profile', level='P4', max='0.6', image='IMG1')
    n = len(matching(manifest, level='P4', hi=0.6, image='img1'))
    assert n > 0 and text_of(out, 'count') == str(n)
    everything, out = dom(folder, tmp_path / 'profile')
    assert text_of(out, 'count') == '700' and text_of(out, 'shown') == '240'
    thumbs = [a for t, a in everything.tags if t == 'img']
    assert len(thumbs) == 240 and all(a.get('loading') == 'lazy' and a['src'] == 'det.png' for a in thumbs)


def test_open_shows_the_detection_beside_its_overview(run, tmp_path):
    folder, manifest = run
    dets = [(i, d) for i in manifest['images'] for d in i['detections']]
    image, det = dets[47]
    parsed, out = dom(folder, tmp_path / 'profile', open=47)
    assert 'hidden' not in by_id(parsed, 'detail')
    assert by_id(parsed, 'detail-overlay')['src'] == urllib.parse.quote(Path(det['png']).name)
    overview = urllib.parse.quote(Path(image['overview']).name)
    assert ('img', {'src': overview, 'alt': f"overview of {Path(image['path']).name}"}) in parsed.tags
    title = text_of(out, 'detail-title')
    assert title.startswith('#47 ') and f"detection {det['index']}" in title
    chips = [a for t, a in parsed.tags if t == 'button' and 'chip' in a.get('class', '')]
    assert len(chips) == len(image['detections'])  # every detection of the image, one of them marked
    assert sum(a['class'] == 'chip on' for a in chips) == 1


def test_a_hostile_class_name_is_text(run, tmp_path):
    folder, manifest = run
    parsed, out = dom(folder, tmp_path / 'profile', **{'class': EVIL_CLASS, 'open': 2})
    n = len(matching(manifest, EVIL_CLASS))
    assert text_of(out, 'count') == str(n) and n > 0
    assert '&lt;img src=x onerror=alert(1)&gt;' in out  # shown as the text it is
    assert not [a for t, a in parsed.tags if t == 'img' and a.get('src') == 'x']
    assert not [a for _, a in parsed.tags for k in a if k.startswith('on')]
    assert ('option', {'value': EVIL_CLASS}) in parsed.tags  # the filter's choice, as an attribute value
    assert 'x&lt;script&gt;alert(1)0.jpg #2' in out  # a card's image name, as text
    scripts = [a for t, a in parsed.tags if t == 'script']
    assert len(scripts) == 2  # the data block and the page's own script, nothing injected


def test_screenshot_shows_the_thumbnails(run, tmp_path):
    folder, _ = run
    png = tmp_path / 'grid.png'
    _, console = chromium((folder / 'index.html').as_uri(), tmp_path / 'profile', f'--screenshot={png}',
                          '--window-size=1280,900')
    assert not [c for c in console if 'Uncaught' in c or 'Refused' in c], console
    shot = cv2.imread(str(png))
    assert shot.shape[:2] == (900, 1280)
    green = (shot[..., 1] > 150) & (shot[..., 0] < 60) & (shot[..., 2] < 60)  # the detections' PNG colour
    assert green.mean() > 0.05  # the thumbnails loaded, by relative path, from the moved folder


def test_compare_page_filters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / 'exp'
    folder.mkdir()
    panel = str(tiny_png(folder / 'panel.png'))
    rows = []
    for k in range(30):
        for j, model in enumerate(['A', EVIL_CLASS]):
            missed = int(j == 1 and k % 7 == 3)
            rows.append({'image': f'/src/{EVIL_FILE}.jpg', 'object': k, 'model': model,
                         'class_name': ['circle', EVIL_CLASS][k % 2], 'missed': missed, 'panel': panel,
                         'score': math.nan if missed else 0.2 + 0.02 * k * (1 + j), 'pointing_game': 1,
                         'energy_pg': 0.5, 'deletion_auc': 0.2, 'insertion_auc': 0.6, 'level_name': 'P3',
                         'layers': 'layers 4'})
    manifest = {'weights': ['a.pt', 'b.pt'], 'models': ['A', EVIL_CLASS], 'method': 'gradcam', 'complete': True}
    compare_page.write(folder, manifest, rows)
    folder = Path(shutil.move(str(folder), str(tmp_path / 'moved')))
    parsed, out = dom(folder, tmp_path / 'profile', missed=f'model:{EVIL_CLASS}')
    assert text_of(out, 'count') == '4' and text_of(out, 'total') == '30'  # objects 3, 10, 17, 24
    parsed, out = dom(folder, tmp_path / 'profile', metric='score', a=EVIL_CLASS, b='A', diff='0.3', sort='diff')
    n = sum(1 for k in range(30) if k % 7 != 3 and 0.02 * k >= 0.3 - 1e-9)
    assert text_of(out, 'count') == str(n)
    objects = [a['data-object'] for t, a in parsed.tags if t == 'div' and 'data-object' in a]
    assert objects[0].endswith('#29') and len(objects) == n  # largest difference first
    parsed, out = dom(folder, tmp_path / 'profile', **{'class': EVIL_CLASS, 'missed': 'none'})
    assert text_of(out, 'count') == str(sum(1 for k in range(30) if k % 2 and k % 7 != 3))


def test_eval_page_loads_clean(tmp_path):
    rows = [{'image': f'/d/{EVIL_FILE}.jpg', 'method': 'gradcam', 'class_id': 0, 'class_name': EVIL_CLASS,
             'level_name': 'P3', 'score': 0.9, 'x1': 1, 'y1': 1, 'x2': 5, 'y2': 5, 'pointing_game': 1,
             'energy_pg': 0.4, 'deletion_auc': 0.3, 'insertion_auc': 0.7}]
    tiny_png(tmp_path / 'curves.png')
    eval_page.write(tmp_path, {'methods': ['gradcam'], 'complete': True}, rows)
    parsed, out = dom(tmp_path, tmp_path / 'profile')
    assert '&lt;img src=x onerror=alert(1)&gt;' in out
    assert ('img', {'class': 'curves', 'src': 'curves.png', 'alt': 'mean deletion and insertion curves per method'}) \
        in parsed.tags
