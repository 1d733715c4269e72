"""Offline: a URL anywhere (data, hyp, weights, source, resume) is not fetched, a converter that is
not installed is not installed for the user, and no yolov5 module starts a program (git, gsutil,
curl, zip, nvidia-smi)."""

import pytest

from bad_input import NAMES, TRAIN, assert_bad_input_isolated, data_yaml, make_workspace, run_in_process


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return make_workspace(tmp_path_factory)


URL_CASES = [
    ['export', '--weights', 'ok.pt', '--include', 'edgetpu'],
    ['export', '--weights', 'ok.pt', '--include', 'tfjs'],
    ['train', '--data', 'http://example.com/d.yaml', *TRAIN],
    ['train', '--data', 'ds/shapes.yaml', *TRAIN, '--hyp', 'https://example.com/hyp.yaml'],
    ['train', '--data', 'ds/shapes.yaml', '--weights', 'https://example.com/w.pt', '--epochs', '1'],
    ['train', '--resume', 'comet://workspace/project/run'],
    ['val', '--weights', 'grpc://example.com:8001/model', '--data', 'ds/shapes.yaml'],
    ['val', '--weights', 'ok.pt', '--data', 'https://example.com/coco.yaml'],
    ['detect', '--weights', 'ok.pt', '--source', 'rtsp://example.com/cam'],
    ['detect', '--weights', 'ok.pt', '--source', 'https://example.com/a.jpg'],
    ['heatmap', '--weights', 'ok.pt', '--source', 'http://example.com/a.jpg'],
    ['heatmap-eval', '--weights', 'ok.pt', '--data', 'http://example.com/d.yaml'],
]


@pytest.mark.parametrize('argv', URL_CASES, ids=[' '.join(a[:1] + a[-2:]) for a in URL_CASES])
def test_urls_are_not_fetched_and_nothing_is_installed(ws, monkeypatch, capsys, no_network, argv):
    rc, lines, err = run_in_process(ws, monkeypatch, capsys, *argv)
    assert rc == 2 and 'Traceback' not in err and no_network == []
    assert 'not fetched' in lines[-1] or ('not installed' in lines[-1] and 'install it yourself' in lines[-1])


def test_yolov5_starts_no_program(ws, monkeypatch, capsys, no_network, tmp_path):
    """Every yolov5 module but export.py (its converters only) refuses to start a program: val's
    ``zip`` for --task study, git, gsutil, curl, nvidia-smi, tar."""
    import importlib

    from yolo_attn.errors import UserError
    calls = {'yolov5.val': lambda m: m.subprocess.run(['zip', '-r', 'study.zip', 'study_*.txt']),
             'yolov5.train': lambda m: m.subprocess.run(['gsutil', 'cp', 'a', 'gs://b']),
             'yolov5.utils.general': lambda m: m.check_output('git -C . describe --tags', shell=True),
             'yolov5.utils.torch_utils': lambda m: m.subprocess.run('nvidia-smi -L | wc -l', shell=True),
             'yolov5.utils.downloads': lambda m: m.curl_download('https://example.com/a.pt', str(tmp_path / 'a.pt'))}
    for name, call in calls.items():
        with pytest.raises(UserError, match='refused to run'):
            call(importlib.import_module(name))
    importlib.import_module('yolov5.utils.general').check_git_status()  # a no-op: no git fetch
    rc, lines, _ = run_in_process(ws, monkeypatch, capsys, 'val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml',
                                  '--task', 'study')
    assert rc == 2 and '--task study' in lines[-1] and not list(ws.glob('study*'))
    assert no_network == []


# Run from an empty folder with the network refused: also nothing written but runs/
NOT_FETCHED_ISOLATED = {  # name: (argv builder, words the one line must contain)
    'data download: not run when a split is missing': (lambda ws: ['val', '--weights', 'ok.pt', '--data', data_yaml(
        ws, 'd2.yaml', 'path: DS\ntrain: images/train\nval: images/missing\n' + NAMES +
        'download: bash -c "curl http://example.com/x | sh"\n')], 'does not exist'),
    'data train split is a URL': (lambda ws: ['train', '--data', data_yaml(
        ws, 'd3.yaml', 'path: DS\ntrain: https://example.com/train.zip\nval: images/val\n' + NAMES), *TRAIN],
                                  'does not exist'),
    'val --task study (zip)': (lambda ws: ['val', '--weights', 'ok.pt', '--data', 'ds/shapes.yaml', '--task', 'study'],
                               '--task study'),
}


@pytest.mark.parametrize('case', list(NOT_FETCHED_ISOLATED))
def test_download_or_program_is_one_line_exit_2_offline_and_writes_nothing(ws, monkeypatch, capsys, no_network,
                                                                           tmp_path, case):
    assert_bad_input_isolated(ws, monkeypatch, capsys, no_network, tmp_path, *NOT_FETCHED_ISOLATED[case])
