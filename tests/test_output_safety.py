"""Outputs: nothing is written outside the run folder, nothing of the user's is overwritten or deleted
(datasets byte for byte, resume folders, run names that escape --project), and concurrent runs get
their own folders; an output place that cannot be used is one line with exit code 2."""

import json
import pathlib
import sys
import threading

import pytest
import torch

from bad_input import (HM, NAMES, STOCK, TRAIN, assert_bad_input, assert_bad_input_isolated, make_workspace,
                       run_in_process, snapshot, write)
from yolo_attn.config.files import load_cfg
from yolo_attn.data.shapes import generate_shapes
from yolov5.models.yolo import Model


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


def resumable_run(ws, run, **changes):
    """``run/weights/last.pt`` with optimizer state and an ``opt.yaml`` as yolov5 writes them."""
    import yaml
    from yolov5.train import parse_opt
    from yolov5.utils.torch_utils import smart_optimizer
    argv, sys.argv = sys.argv, ['train']
    try:
        opt = vars(parse_opt(True))
    finally:
        sys.argv = argv
    hyp = yaml.safe_load((STOCK.parent.parent / 'data' / 'hyps' / 'hyp.scratch-low.yaml').read_text())
    opt.update({'data': str(ws / 'ds' / 'shapes.yaml'), 'hyp': hyp, 'epochs': 2, 'imgsz': 64, 'device': 'cpu',
                'save_dir': str(run), **changes})
    opt = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in opt.items()}
    model = Model(load_cfg('yolov5n-se'), nc=5)
    (run / 'weights').mkdir(parents=True)
    torch.save({'epoch': 0, 'best_fitness': 0.0, 'model': model.half(), 'ema': None, 'updates': 0,
                'optimizer': smart_optimizer(model.float(), 'SGD', 0.01, 0.9, 5e-4).state_dict(), 'opt': opt},
               run / 'weights' / 'last.pt')
    (run / 'opt.yaml').write_text(yaml.safe_dump(opt, sort_keys=False))
    return run / 'weights' / 'last.pt'


def test_crafted_resume_folder_and_run_names_write_nothing_outside(ws, monkeypatch, capsys, tmp_path):
    import yolov5.train
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'hyp.yaml').write_text('precious')
    seen = []

    def train_writes_settings(hyp, opt, device, callbacks):  # what yolov5's train() writes first
        seen.append(opt.save_dir)
        (pathlib.Path(opt.save_dir) / 'hyp.yaml').write_text(json.dumps(hyp))
        (pathlib.Path(opt.save_dir) / 'opt.yaml').write_text(json.dumps(vars(opt), default=str))

    monkeypatch.setattr(yolov5.train, 'train', train_writes_settings)
    last = resumable_run(ws, tmp_path / 'runs' / 'crafted', save_dir=str(victim))  # opt.yaml points elsewhere
    rc, _, err = run_in_process(ws, monkeypatch, capsys, 'train', '--resume', last)
    assert rc == 0, err
    assert seen == [str(last.parent.parent.resolve())] and (victim / 'hyp.yaml').read_text() == 'precious'
    assert sorted(p.name for p in victim.iterdir()) == ['hyp.yaml']
    for i, change in enumerate([{'evolve': 3}, {'bucket': 'gs://b'}, {'epochs': 'many'}, {'injected': 1}]):
        last = resumable_run(ws, tmp_path / 'runs' / f'bad{i}', **change)
        rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'train', '--resume', last)
        assert rc == 2 and any(w in lines[-1] for w in ('cannot resume', 'remove it to resume', 'not a valid value')), \
            (change, lines)
    assert len(seen) == 1  # none of them trained
    # --name cannot leave --project, and concurrent claims get distinct folders
    rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'detect', '--weights', 'ok.pt', '--source', 'ds/images/val',
                                  '--imgsz', 64, '--project', tmp_path / 'p', '--name', '../escaped')
    assert rc == 2 and 'inside --project' in lines[-1] and not (tmp_path / 'escaped').exists()
    from yolo_attn.guards.paths import claim_run_dir
    start, claimed = threading.Barrier(12), []

    def claim():
        start.wait()
        claimed.append(claim_run_dir(tmp_path / 'race', 'exp'))

    threads = [threading.Thread(target=claim) for _ in range(12)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(claimed)) == 12 and {p.name for p in claimed} == {'exp'} | {f'exp{n}' for n in range(2, 13)}


def test_val_and_train_leave_the_dataset_folder_untouched(ws, monkeypatch, capsys, tmp_path):
    """No label cache (labels/*.cache), no "restored" JPEG over the user's file: byte for byte, mtime for mtime."""
    ds = tmp_path / 'mine'
    generate_shapes(ds, n_train=4, n_val=2, imgsz=64, progress=False)
    jpg = sorted((ds / 'images' / 'train').glob('*.jpg'))[0]
    jpg.write_bytes(jpg.read_bytes()[:-2])  # no end marker: yolov5 would re-save it over the user's file
    before = snapshot(ds)
    runs = tmp_path / 'runs'
    rc, _, err = run_in_process(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', ds / 'shapes.yaml',
                                '--imgsz', 64, '--project', runs)
    assert rc == 0, err[-2000:]
    rc, _, err = run_in_process(ws, monkeypatch, capsys, 'train', '--data', ds / 'shapes.yaml', *TRAIN,
                                '--batch-size', 4, '--project', runs)
    assert rc == 0, err[-2000:]
    assert snapshot(ds) == before
    assert (runs / 'exp' / 'weights' / 'last.pt').is_file() or (runs / 'exp2' / 'weights' / 'last.pt').is_file()
    assert 'not writeable' not in err  # the cache yolov5 did not save is not reported as a permissions problem


BAD_OUTPUTS = {  # name: (argv builder, words the one line must contain)
    '--project is a file': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '64',
                                        '--project', write(ws, 'afile', 'x')], 'afile'),
}


@pytest.mark.parametrize('case', list(BAD_OUTPUTS))
def test_unusable_output_place_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    assert_bad_input(ws, monkeypatch, capsys, *BAD_OUTPUTS[case])


# Run from an empty folder with the network refused: also nothing written but runs/
BAD_OUTPUTS_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'data path: /etc': (lambda ws: ['val', '--weights', 'ok.pt', '--data', write(
        ws, 'd4.yaml', 'path: /etc\ntrain: images/train\nval: images/val\n' + NAMES)], '/etc/images/val'),
    '--project /proc': (lambda ws: ['heatmap', *HM, '--project', '/proc'], 'choose a writable --project'),
    '--name of 300 characters': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--name',
                                             'n' * 300], 'cannot create run folder'),
    'detect --update': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--update'],
                        'never overwrites'),
    '--name . (the --project folder itself)': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val',
                                                         '--project', 'p', '--name', '.'], 'not "."'),
    'train --cache disk': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--cache', 'disk'],
                           'nothing into your dataset'),
}


@pytest.mark.parametrize('case', list(BAD_OUTPUTS_ISOLATED))
def test_unusable_output_place_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network,
                                                                             tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *BAD_OUTPUTS_ISOLATED[case])
