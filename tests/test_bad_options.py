"""Bad command-line option values (sizes, counts, thresholds, devices, layers, methods, formats, tasks):
one line naming the option, exit code 2, no traceback, from the in-process CLI and the console script."""

import os
import subprocess
import sys

import pytest

from bad_input import HM, TRAIN, assert_bad_input, assert_bad_input_isolated, make_workspace


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


BAD_OPTIONS = {  # name: (argv builder, words the one line must contain)
    'detect --imgsz 0': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '0'],
                         '--imgsz 0'),
    'heatmap --imgsz 0': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz', '0'],
                          '--imgsz 0'),
    'heatmap --max-pixels 0': (lambda ws: ['heatmap', '--weights', 'ok.pt', '--source', 'ds/images/val',
                                           '--max-pixels', '0'], 'must be positive'),
    'export --include foo': (lambda ws: ['export', '--weights', 'ok.pt', '--include', 'foo'], 'unknown format'),
}


@pytest.mark.parametrize('case', list(BAD_OPTIONS))
def test_bad_option_is_one_line_and_exit_2(ws, monkeypatch, capsys, case):
    assert_bad_input(ws, monkeypatch, capsys, *BAD_OPTIONS[case])


# Run from an empty folder with the network refused: also nothing written but runs/
BAD_OPTIONS_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'train --batch-size 0': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--batch-size', '0'],
                             '--batch-size 0'),
    'train --epochs 0': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--epochs', '0'], '--epochs 0'),
    'train --workers -1': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--workers', '-1'],
                           '--workers -1'),
    'detect --conf-thres 2': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--conf-thres',
                                          '2'], '--conf-thres 2'),
    'val --iou-thres -1': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--iou-thres', '-1'],
                           '--iou-thres -1'),
    'detect --max-det 0': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--max-det', '0'],
                           '--max-det 0'),
    'heatmap --max-det 0': (lambda ws: ['heatmap', *HM, '--max-det', '0'], '--max-det 0'),
    'heatmap --device cuda:0 without a GPU': (lambda ws: ['heatmap', *HM, '--device', 'cuda:0'], '--device cuda:0'),
    'heatmap-eval --device 7': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                            '--device', '7'], '--device 7'),
    'heatmap-eval --layers 999': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                              '--imgsz', '64', '--layers', '999'], '--layers [999]'),
    'heatmap --layers foo': (lambda ws: ['heatmap', *HM, '--layers', 'foo'], "unknown role 'foo'"),
    'heatmap --method nonsense': (lambda ws: ['heatmap', *HM, '--method', 'nonsense'], "invalid choice: 'nonsense'"),
    'heatmap-compare --method nonsense': (lambda ws: ['heatmap-compare', '--weights', 'ok.pt', 'ok.pt', '--source',
                                                      'ds/images/val', '--method', 'nonsense'],
                                          'unknown --method nonsense'),
    'export onnx --imgsz 0': (lambda ws: ['export', '--weights', 'ok.pt', '--include', 'onnx', '--imgsz', '0'],
                              '--imgsz 0'),
    'val --task nonsense': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--task', 'nonsense'],
                            '--task nonsense'),
    'train --seed -2': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--seed', '-2'], '--seed -2'),
    'train --label-smoothing 5': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--label-smoothing', '5'],
                                  'between 0 and 1'),
    'train --freeze every layer': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--freeze', '999'],
                                   'nothing would train'),
    'heatmap-compare --max-images 0': (lambda ws: ['heatmap-compare', '--weights', 'ok.pt', 'ok.pt', '--source',
                                                   'ds/images/val', '--max-images', '0'], '--max-images >= 1'),
    'heatmap-eval --match-iou 2': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                               '--match-iou', '2'], 'at most 1'),
    'build --nc 0': (lambda ws: ['build', '--cfg', 'yolov5n-se', '--nc', '0'], 'nc: 0'),
    'build --imgsz 0': (lambda ws: ['build', '--cfg', 'yolov5n-se', '--imgsz', '0'], '--imgsz 0'),
    'demo --epochs 0': (lambda ws: ['demo', '--epochs', '0'], '--epochs 0'),
}


@pytest.mark.parametrize('case', list(BAD_OPTIONS_ISOLATED))
def test_bad_option_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network, tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *BAD_OPTIONS_ISOLATED[case])


@pytest.mark.parametrize('argv', [['heatmap', '--device', '7'], ['train', '--data', 'ds/shapes.yaml', '--epochs', '0']],
                         ids=['heatmap --device 7', 'train --epochs 0'])
def test_bad_option_from_the_console_script_is_one_line_and_exit_2(ws, argv):
    """The console script itself: exit code 2 and one line, no traceback."""
    if argv[0] == 'heatmap':
        argv = argv[:1] + HM + argv[1:]
    else:
        argv = argv + TRAIN[:4]
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    out = subprocess.run([sys.executable, '-m', 'yolo_attn', *argv], cwd=ws, env=env, capture_output=True, text=True,
                         timeout=300)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and 'Traceback' not in out.stderr
    assert lines[-1].startswith(f'yolo-attn {argv[0]}: error:')
    assert sum(s.startswith('yolo-attn') for s in lines) == 1, out.stderr[-2000:]
