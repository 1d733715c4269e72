"""heatmap-eval and heatmap-compare keep their table and manifest.json valid image by image: a run cut
short by Ctrl-C, a crash or a full disk leaves files that parse, say the run is incomplete and list
the images done; unreadable images are skipped with one warning line each and listed."""

import errno
import json
import os

import pandas as pd
import pytest
import yolov5.utils.general  # noqa: F401  (yolov5's log handler binds to the real stderr, not to a capture)

from conftest import ROOT
from yolo_attn.cli import main
from yolo_attn.data.shapes import generate_shapes

SHAPES_PT = ROOT / 'yolo_attn' / 'models' / 'pretrained' / 'yolov5n-shapes.pt'
FAST = ['--imgsz', '64', '--steps', '1', '--max-det', '5', '--conf-thres', '0.2', '--method', 'elementwise']

pytestmark = pytest.mark.usefixtures('one_thread')


@pytest.fixture(scope='module')
def ds(tmp_path_factory):
    """3 shapes images, then an empty .jpg and a dangling link (sorted after them)."""
    root = tmp_path_factory.mktemp('partial')
    generate_shapes(root / 'ds', n_train=1, n_val=3, imgsz=64, progress=False)
    val = root / 'ds' / 'images' / 'val'
    (val / 'zz_empty.jpg').write_bytes(b'')
    os.symlink('nowhere.jpg', val / 'zz_link.jpg')
    return root


def cli(ds, monkeypatch, capsys, *argv):
    monkeypatch.chdir(ds)
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def skip_warnings(caplog) -> int:
    return sum(r.getMessage().startswith('WARNING: skipping') for r in caplog.records)


def stop_at_curves(monkeypatch, n, error):
    """The n-th image's deletion/insertion raises ``error`` (images before it are done)."""
    from yolo_attn.evaluation.perturb import Perturber
    original, calls = Perturber.curves, []

    def curves(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Perturber, 'curves', curves)


def state(run):
    """The manifest and the table, both parsed (a half-written file would fail here)."""
    manifest = json.loads((run / 'manifest.json').read_text())
    table = pd.read_csv(run / manifest['table'])
    assert len(table) == manifest['rows']
    return manifest, table


def test_eval_complete_run_lists_unreadable_images_once(ds, monkeypatch, capsys, caplog):
    rc, err = cli(ds, monkeypatch, capsys, 'heatmap-eval', '--weights', SHAPES_PT, '--data', 'ds/shapes.yaml', *FAST,
                  'gradcam', '--no-sanity', '--project', 'ok')
    assert rc == 0 and 'Traceback' not in err, err[-2000:]
    manifest, table = state(ds / 'ok' / 'exp')
    assert manifest['complete'] is True and 'interrupted' not in manifest and 'error' not in manifest
    assert sorted(os.path.basename(s['path']) for s in manifest['skipped']) == ['zz_empty.jpg', 'zz_link.jpg']
    assert skip_warnings(caplog) == 2  # once per file, not once per method
    for m in ('elementwise', 'gradcam'):
        assert [os.path.basename(p) for p in manifest['images_done'][m]] == ['00000.jpg', '00001.jpg', '00002.jpg']
    assert len(table) > 0 and set(table['method']) == {'elementwise', 'gradcam'}
    assert {'summary.csv', 'sanity.csv', 'curves.png'} <= set(manifest['files'])


@pytest.mark.parametrize('stop', ['ctrl-c', 'crash', 'disk full'])
def test_eval_cut_short_leaves_a_valid_incomplete_record(ds, monkeypatch, capsys, stop):
    project = f'cut-{stop.replace(" ", "-")}'
    if stop == 'disk full':  # the third result-file write finds the disk full (the first image's two are done)
        from yolo_attn.guards import outputs
        writes = []

        def fsync(fd):
            writes.append(fd)
            if len(writes) >= 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(outputs.os, 'fsync', fsync)
    else:
        stop_at_curves(monkeypatch, 2, KeyboardInterrupt() if stop == 'ctrl-c' else RuntimeError('boom'))
    argv = ['heatmap-eval', '--weights', SHAPES_PT, '--data', 'ds/shapes.yaml', *FAST, '--no-sanity',
            '--project', project]
    if stop == 'crash':
        with pytest.raises(RuntimeError, match='boom'):
            cli(ds, monkeypatch, capsys, *argv)
    else:
        rc, err = cli(ds, monkeypatch, capsys, *argv)
        lines = [s for s in err.splitlines() if s.startswith(('yolo-attn', 'interrupted'))]
        assert 'Traceback' not in err and len(lines) == 1, err[-2000:]
        assert (rc, 'disk full' in lines[0]) == ((130, False) if stop == 'ctrl-c' else (2, True)), lines
    manifest, table = state(ds / project / 'exp')
    assert manifest['complete'] is False
    done = manifest['images_done'].get('elementwise', [])
    assert [os.path.basename(p) for p in done] == ['00000.jpg']  # the first image, and only it
    assert set(table['image']) <= set(done)
    if stop == 'ctrl-c':
        assert manifest['interrupted'] is True and 'results so far are in' in lines[0]
    if stop == 'crash':
        assert manifest['error'] == 'boom'
    assert not (ds / project / 'exp' / 'summary.csv').exists()


def test_compare_interrupted_lists_done_and_skipped(ds, monkeypatch, capsys, caplog):
    stop_at_curves(monkeypatch, 5, KeyboardInterrupt())  # two models: the third image's first model
    src = ds / 'ds' / 'images' / 'val'
    rc, err = cli(ds, monkeypatch, capsys, 'heatmap-compare', '--weights', SHAPES_PT, SHAPES_PT, '--source',
                  src, *FAST, '--project', 'cmp')
    assert rc == 130 and 'Traceback' not in err and skip_warnings(caplog) == 0
    manifest, table = state(ds / 'cmp' / 'exp')
    assert manifest['complete'] is False and manifest['interrupted'] is True
    assert [os.path.basename(p) for p in manifest['images_done']['elementwise']] == ['00000.jpg', '00001.jpg']
    assert set(table['image']) <= set(manifest['images_done']['elementwise'])
    rc, err = cli(ds, monkeypatch, capsys, 'heatmap-compare', '--weights', SHAPES_PT, SHAPES_PT, '--source',
                  src / 'zz_*.jpg', *FAST, '--steps', '0', '--project', 'cmp')
    manifest, table = state(ds / 'cmp' / 'exp2')
    assert rc == 0 and manifest['complete'] is True and len(table) == 0 and skip_warnings(caplog) == 2
    assert sorted(os.path.basename(s['path']) for s in manifest['skipped']) == ['zz_empty.jpg', 'zz_link.jpg']
