"""Small inputs cannot exhaust the machine: YAML alias bombs, huge repeats and layer sizes, images of
too many pixels (refused before decoding), symlink loops in an image folder and image sizes or batch
sizes past the limits are refused promptly, as one line with exit code 2."""

import os
import subprocess
import sys
import time

import pytest

from bad_input import STOCK, TRAIN, assert_bad_input_isolated, make_workspace, run_in_process
from yolo_attn.data.shapes import generate_shapes


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + ''.join(
    f'{c}: &{c} [{", ".join([f"*{p}"] * 9)}]\n' for p, c in zip('abcdefgh', 'bcdefghi'))


def test_alias_bomb_repeats_layer_size_pixels_and_symlink_loops_are_bounded(ws, monkeypatch, capsys, tmp_path):
    (ws / 'bomb.yaml').write_text(BOMB)
    assert len(BOMB) < 1000
    t = time.time()
    rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', 'bomb.yaml')
    assert rc == 2 and 'billion laughs' in lines[-1] and time.time() - t < 20
    stock = STOCK.read_text()
    for old, new, words in [('[-1, 3, C3, [128]]', '[-1, 1000000000, C3, [128]]', 'more than 100 layers'),
                            ('[-1, 1, Conv, [64, 6, 2, 2]]', '[-1, 1, Conv, [4000000, 6, 2, 2]]', 'parameters in one')]:
        (ws / 'big.yaml').write_text(stock.replace(old, new))
        t = time.time()
        rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'build', '--cfg', 'big.yaml')
        assert rc == 2 and words in lines[-1] and time.time() - t < 20, lines
    # pixels: a 12000x12000 PNG (17 KB on disk) is refused before decoding; the limit can be raised
    from PIL import Image

    from yolo_attn.guards import images
    Image.new('1', (12000, 12000)).save(ws / 'huge.png')
    t = time.time()
    rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'heatmap', '--weights', 'ok.pt', '--source', 'huge.png',
                                  '--imgsz', 64)
    assert rc == 2 and '--max-pixels 144000000' in lines[-1] and time.time() - t < 30
    small = str(ws / 'ds' / 'images' / 'val' / '00000.jpg')
    try:
        images.set_max_pixels(64 * 64 - 1)
        with pytest.raises(images.ImageTooLarge):
            images.imread(small)
        images.set_max_pixels(64 * 64)
        assert images.imread(small).shape == (64, 64, 3)
    finally:
        images.set_max_pixels(images.DEFAULT_MAX_PIXELS)
    # symlinks to '.' and '..' inside an image folder: the dataset loader lists each image once, promptly
    loop = tmp_path / 'loop'
    generate_shapes(loop, n_train=2, n_val=2, imgsz=64, progress=False)
    os.symlink('.', loop / 'images' / 'val' / 'again')
    os.symlink('..', loop / 'images' / 'val' / 'up')
    code = ('import yolo_attn, sys; yolo_attn.activate(); from yolov5.utils.dataloaders import LoadImagesAndLabels; '
            f'print(len(LoadImagesAndLabels({str(loop / "images" / "val")!r}, img_size=64).im_files))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.split()[-1] == '4', out.stderr[-500:]  # val 2 + train 2 via 'up'


# Run from an empty folder with the network refused: also nothing written but runs/
TOO_LARGE_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'detect --imgsz 99999': (lambda ws: ['detect', '--weights', 'ok.pt', '--source', 'ds/images/val', '--imgsz',
                                         '99999'], '--max-pixels'),
    'heatmap-eval --imgsz 99999': (lambda ws: ['heatmap-eval', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                               '--imgsz', '99999'], '--max-pixels'),
    'train --batch-size -3': (lambda ws: ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--batch-size', '-3'],
                              '--batch-size'),
    'data --imgsz 99968': (lambda ws: ['data', 'shapes', '--out', 'huge', '--imgsz', '99968'], '--max-pixels'),
}


@pytest.mark.parametrize('case', list(TOO_LARGE_ISOLATED))
def test_too_large_request_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network,
                                                                         tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *TOO_LARGE_ISOLATED[case])
