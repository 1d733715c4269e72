"""``index.html`` of heatmap, heatmap-eval and heatmap-compare runs, read as HTML (stdlib ``html.parser``):
the embedded data matches the manifest, every path is relative and still resolves after the run
folder is moved, hostile class and file names stay text, ``--no-html`` writes no page, a run cut
short leaves a valid page; one real tiny heatmap run end to end. The browser: test_report_browser.py."""

import inspect
import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import WS_IMGSZ
from report_helpers import EVIL_CLASS, EVIL_FILE, Page, assert_safe, resolves, synthetic_heatmap_run, tiny_png
from yolo_attn.report import compare as compare_page
from yolo_attn.report import evaluation as eval_page
from yolo_attn.report import heatmap as heatmap_page
from yolo_attn.report import page


@pytest.mark.parametrize('relative', [True, False])
def test_heatmap_page_data_paths_and_escaping(tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    run, manifest = synthetic_heatmap_run(tmp_path, relative=relative)
    path = heatmap_page.write(run, manifest, final=True)
    text = path.read_text(encoding='utf-8')
    parsed = Page(text)
    assert_safe(text, parsed, scripts=2)
    data = parsed.data()
    n = sum(len(i['detections']) for i in manifest['images'])
    assert len(data['dets']) == n == 12 and len(data['images']) == 3
    assert EVIL_CLASS in data['classes']  # kept exactly, as data
    det = dict(zip(data['fields'], data['dets'][1]))
    assert det['energy'] is None and det['png'].startswith('x%3Cscript%3E')  # NaN -> null; percent-encoded
    assert [d[data['fields'].index('score')] for d in data['dets']] == [
        round(d['score'], 5) for i in manifest['images'] for d in i['detections']]
    elsewhere = shutil.move(str(run), str(tmp_path / 'moved' / 'renamed'))  # moved, as a zip would unpack it
    monkeypatch.chdir(tmp_path / 'moved')
    refs = [d[data['fields'].index('png')] for d in data['dets']] + [i['overview'] for i in data['images']]
    assert len(refs) == 15 and all(resolves(Path(elsewhere), r) for r in refs)
    assert 'weights' in ''.join(parsed.text) and f'{EVIL_FILE}.pt' in ''.join(parsed.text)  # header as text


def test_heatmap_page_is_paced_but_always_final(tmp_path):
    run, manifest = synthetic_heatmap_run(tmp_path, relative=False)
    manifest['complete'] = False
    assert heatmap_page.write(run, manifest) is not None  # the first write
    pacer = heatmap_page._PACERS[str(run.resolve())]
    pacer.cost = 3600.0  # as if a write took an hour: the next ones wait ...
    assert heatmap_page.write(run, manifest) is None
    assert heatmap_page.write(run, manifest, final=True) is not None  # ... except the last
    assert str(run.resolve()) not in heatmap_page._PACERS
    p = page.Pacer(ratio=10)
    assert p.due(False)
    p.wrote(p.last or 0.0)
    assert p.due(True)


def test_json_block_cannot_end_its_script():
    block = page.json_block({'a': '</script><script>alert(1)</script>', 'b': '<!-- x', 'c': 'a & b', 'n': math.nan})
    assert block.count('</script>') == 1 and '<!--' not in block and '<script>alert' not in block
    parsed = Page(block)
    assert parsed.data() == {'a': '</script><script>alert(1)</script>', 'b': '<!-- x', 'c': 'a & b', 'n': None}
    assert page.href('/a/b/c d#?.png', '/a') == 'b/c%20d%23%3F.png'
    assert page.href('javascript:alert(1)', '.').startswith('javascript%3A')  # a relative file name, not a URL


def eval_rows(n=6):
    rows = []
    for m in ('elementwise', 'gradcam'):
        for i in range(n):
            rows.append({'image': f'/data/{EVIL_FILE}{i}.jpg', 'method': m, 'class_id': i % 2,
                         'class_name': [EVIL_CLASS, 'star'][i % 2], 'level_name': 'P3', 'score': 0.5 + i / 20,
                         'x1': 1, 'y1': 1, 'x2': 9, 'y2': 9, 'pointing_game': i % 2, 'energy_pg': i / 10,
                         'deletion_auc': 1 - i / 10 if i != 2 else math.nan, 'insertion_auc': i / 10})
    return rows


def test_eval_page_tables_verdict_and_worst_lists(tmp_path):
    from yolo_attn.evaluation.report import summarize
    rows = eval_rows()
    summary = summarize(rows)
    sanity = [{'method': 'elementwise', 'level': 'all', 'n': 3, 'mean_rho': 0.7, 'mean_rho_partial': 0.6,
               'mean_rho_prior': 0.8, 'constant': 0, 'verdict': 'fail', 'reason': f'fail (rho 0.70) {EVIL_CLASS}'}]
    manifest = {'command': 'heatmap-eval', 'weights': f'{EVIL_FILE}.pt', 'data': 'd.yaml', 'split': 'val',
                'methods': ['elementwise', 'gradcam'], 'images': 6, 'layers': {'spec': 'level'}, 'steps': 3,
                'protocol': 'box', 'complete': True, 'skipped': []}
    tiny_png(tmp_path / 'curves.png')
    text = eval_page.write(tmp_path, manifest, rows, summary, sanity).read_text(encoding='utf-8')
    parsed = Page(text)
    assert_safe(text, parsed, scripts=1)
    words = ' '.join(parsed.text)
    assert 'Randomisation check' in words and EVIL_CLASS in words  # the reason, as text
    assert 'lowest energy in the box' in words and 'worst deletion' in words
    assert parsed.srcs() == ['curves.png']  # without a model: no thumbnails, only the curves
    picks = eval_page.worst(rows, n=3)
    assert [r['energy_pg'] for r in picks[('gradcam', 'energy')]] == [0.0, 0.1, 0.2]
    assert [r['deletion_auc'] for r in picks[('gradcam', 'deletion')]] == [1.0, 0.9, 0.7]  # NaN left out


def compare_rows():
    rows = []
    for k in range(5):
        for j, model in enumerate(['A', EVIL_CLASS]):
            missed = int(j == 1 and k == 3)
            rows.append({'image': f'/src/{EVIL_FILE}.jpg', 'object': k, 'model': model, 'class_name': EVIL_CLASS,
                         'missed': missed, 'panel': f'{EVIL_FILE}_{k:03d}_c.png',
                         'score': math.nan if missed else 0.5 + k / 10 - j / 5,
                         'pointing_game': math.nan if missed else 1, 'energy_pg': 0.3, 'deletion_auc': 0.2,
                         'insertion_auc': 0.6, 'level_name': 'P4', 'layers': 'layers 4,6'})
    return rows


def test_compare_page_objects_and_metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / 'exp'
    run.mkdir()
    rows = compare_rows()
    for r in rows:
        r['panel'] = str(tiny_png(run / r['panel']))
    manifest = {'command': 'heatmap-compare', 'weights': ['a.pt', 'b.pt'], 'models': ['A', EVIL_CLASS],
                'source': 'src', 'method': 'elementwise', 'target': 'score', 'images': 1,
                'layers': [{'spec': 'level'}, {'spec': 'level'}], 'complete': True, 'skipped': []}
    metrics = [{'model': 'A', 'detections': 4, 'pointing_game': 100.0, 'energy_pg': 0.3, 'deletion_auc': 0.2,
                'insertion_auc': 0.6, 'missed': 0},
               {'model': EVIL_CLASS, 'detections': 4, 'pointing_game': 100.0, 'energy_pg': 0.3, 'deletion_auc': 0.2,
                'insertion_auc': 0.6, 'missed': 1}]
    text = compare_page.write(run, manifest, rows, metrics).read_text(encoding='utf-8')
    parsed = Page(text)
    assert_safe(text, parsed, scripts=2)
    data = parsed.data()
    assert len(data['objects']) == 5 and data['models'] == ['A', EVIL_CLASS]
    assert [o['m'][1][0] for o in data['objects']] == [0, 0, 0, 1, 0] and data['objects'][3]['m'][1][1] is None
    moved = Path(shutil.move(str(run), str(tmp_path / 'zipped' / 'exp')))
    assert all(resolves(moved, o['panel']) for o in data['objects'])
    assert sum(1 for t, _ in parsed.tags if t == 'tr') == 3  # the metrics table: header and two models


def test_no_html_flag_on_all_three_commands():
    from yolo_attn.cli import make_parser
    from yolo_attn.evaluation import compare, evaluate
    from yolo_attn.heatmaps import runner
    argv = {'heatmap': ['--weights', 'w.pt', '--source', 's'], 'heatmap-eval': ['--weights', 'w.pt', '--data', 'd'],
            'heatmap-compare': ['--weights', 'a.pt', 'b.pt', '--source', 's']}
    for command, fn in (('heatmap', runner.run), ('heatmap-eval', evaluate.run), ('heatmap-compare', compare.run)):
        on = make_parser(command).parse_args([command, *argv[command]])
        off = make_parser(command).parse_args([command, *argv[command], '--no-html'])
        assert (on.html, off.html) == (True, False)
        assert inspect.signature(fn).parameters['html'].default is True


# ---- real tiny runs -----------------------------------------------------------------------------------

KW = dict(imgsz=WS_IMGSZ, conf_thres=0.05, max_det=3)


def test_heatmap_run_writes_its_page_end_to_end(ws, tmp_path, monkeypatch, one_thread):
    from yolo_attn.heatmaps.runner import run
    monkeypatch.chdir(tmp_path)
    manifest = run(weights=ws / 'w.pt', source=ws / 'ds' / 'images' / 'val', project='runs', **KW)
    save = Path(manifest['save_dir'])
    text = (save / 'index.html').read_text(encoding='utf-8')
    parsed = Page(text)
    assert_safe(text, parsed, scripts=2)
    data = parsed.data()
    n = sum(len(i['detections']) for i in manifest['images'])
    assert n == len(data['dets']) > 0 and 'complete' in ' '.join(parsed.text)
    moved = Path(shutil.move(str(save), str(tmp_path / 'elsewhere')))
    assert all(resolves(moved, image['overview']) for image in data['images'])
    assert all(resolves(moved, d[data['fields'].index('png')]) for d in data['dets'])
    assert not list(moved.glob('.index.html.*'))  # no temporary file left behind
    off = run(weights=ws / 'w.pt', source=ws / 'ds' / 'images' / 'val', project='runs', html=False, **KW)
    assert not (Path(off['save_dir']) / 'index.html').exists() and (Path(off['save_dir']) / 'heatmaps.json').exists()


def test_heatmap_run_cut_short_leaves_a_valid_page(ws, tmp_path, monkeypatch, one_thread):
    from yolo_attn.heatmaps import runner
    original, calls = runner.overview, []

    def overview(*args, **kwargs):  # Ctrl-C while the second image is drawn
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, 'overview', overview)
    with pytest.raises(KeyboardInterrupt):
        runner.run(weights=ws / 'w.pt', source=ws / 'ds' / 'images' / 'val', project=tmp_path, **KW)
    save = tmp_path / 'exp'
    manifest = json.loads((save / 'heatmaps.json').read_text())
    parsed = Page((save / 'index.html').read_text(encoding='utf-8'))
    assert manifest['interrupted'] and len(manifest['images']) == 1
    assert len(parsed.data()['dets']) == len(manifest['images'][0]['detections'])
    assert 'interrupted' in ' '.join(parsed.text)


def pseudo_labelled(ws, root):
    """The val images labelled with the model's own larger detections (every label is detected)."""
    from yolo_attn.heatmaps import explain
    ds = root / 'pseudo'
    (ds / 'labels' / 'val').mkdir(parents=True)
    shutil.copytree(ws / 'ds' / 'images' / 'val', ds / 'images' / 'val')
    for image in explain(ws / 'w.pt', ds / 'images' / 'val', imgsz=WS_IMGSZ, conf_thres=0.05, max_det=40):
        h, w = image.shape
        big = [d for d in image.detections if (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) >= 64][:3]
        (ds / 'labels' / 'val' / f'{Path(image.path).stem}.txt').write_text(''.join(
            f'{d.cls} {(d.box[0] + d.box[2]) / 2 / w} {(d.box[1] + d.box[3]) / 2 / h} {(d.box[2] - d.box[0]) / w} '
            f'{(d.box[3] - d.box[1]) / h}\n' for d in big))
    (ds / 'data.yaml').write_text('path: .\ntrain: images/val\nval: images/val\nnames: [circle, square, triangle, '
                                  'star, cross]\n')
    return ds


def test_eval_and_compare_runs_write_their_pages(ws, tmp_path, monkeypatch, one_thread):
    from yolo_attn.evaluation import compare, evaluate
    monkeypatch.chdir(tmp_path)
    ds = pseudo_labelled(ws, tmp_path)
    result = evaluate.run(weights=ws / 'w.pt', data=ds / 'data.yaml', imgsz=WS_IMGSZ, conf_thres=0.05, max_det=40,
                          steps=1, method='elementwise', sanity=False, project='eval')
    save = Path(result['save_dir'])
    text = (save / 'index.html').read_text(encoding='utf-8')
    parsed = Page(text)
    assert_safe(text, parsed, scripts=1)
    thumbs = [s for s in parsed.srcs() if s.startswith(eval_page.FOLDER + '/')]
    assert result['matched'] > 0 and len(thumbs) == 2 * min(eval_page.WORST, result['matched'])  # both lists
    assert len(set(thumbs)) == len(list((save / eval_page.FOLDER).glob('*.png')))  # one file per detection
    assert 'index.html' in json.loads((save / 'manifest.json').read_text())['files']
    moved = Path(shutil.move(str(save), str(tmp_path / 'moved-eval')))
    assert all(resolves(moved, s) for s in parsed.srcs())
    kw = dict(imgsz=WS_IMGSZ, conf_thres=0.3, max_det=4, steps=0, method='gradcam', project='cmp')
    on = compare.run([ws / 'w.pt', ws / 'w.pt'], ws / 'ds' / 'images' / 'val', **kw)
    data = Page((Path(on['save_dir']) / 'index.html').read_text(encoding='utf-8')).data()
    assert len(data['objects']) == on['objects'] > 0
    off = compare.run([ws / 'w.pt', ws / 'w.pt'], ws / 'ds' / 'images' / 'val', html=False, **kw)
    assert not (Path(off['save_dir']) / 'index.html').exists() and (Path(off['save_dir']) / 'metrics.csv').exists()


def test_eval_cut_short_leaves_a_page_of_what_was_done(ws, tmp_path, monkeypatch, one_thread):
    from yolo_attn.evaluation import evaluate
    from yolo_attn.evaluation.perturb import Perturber
    monkeypatch.chdir(tmp_path)
    ds = pseudo_labelled(ws, tmp_path)
    original, calls = Perturber.curves, []

    def curves(self, *args, **kwargs):  # Ctrl-C during the second image's deletion/insertion
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Perturber, 'curves', curves)
    with pytest.raises(KeyboardInterrupt):
        evaluate.run(weights=ws / 'w.pt', data=ds / 'data.yaml', imgsz=WS_IMGSZ, conf_thres=0.05, max_det=40, steps=1,
                     method='elementwise', sanity=False, project='eval')
    parsed = Page((tmp_path / 'eval' / 'exp' / 'index.html').read_text(encoding='utf-8'))
    words = ' '.join(parsed.text)
    assert 'interrupted' in words and 'all matched' in words  # the first image's rows, summarised
    assert not parsed.srcs()  # no thumbnails and no curves for a run cut short
